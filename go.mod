module sparkd

go 1.26

require (
	github.com/BurntSushi/toml v1.6.0 // indirect
	github.com/go-zookeeper/zk v1.0.4 // indirect
	github.com/gorilla/mux v1.8.1 // indirect
	github.com/sirupsen/logrus v1.10.2 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.13.0 // indirect
)
