module github.com/sparkd/sparkd

go 1.26

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/go-zookeeper/zk v1.0.4
	github.com/gorilla/mux v1.8.1
	github.com/sirupsen/logrus v1.10.2
	github.com/stretchr/testify v1.12.1
)

require (
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.13.0 // indirect
)
