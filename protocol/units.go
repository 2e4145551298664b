package protocol

import "fmt"

// MegabytesString renders a size in megabytes the way Spark's
// Utils.megabytesToString does, for the web UIs and log lines of both
// daemons: "0.0 B", "1024.0 MiB", "2.0 GiB", "15.0 GiB".
func MegabytesString(mb int) string {
	const (
		kib = int64(1) << 10
		mib = kib << 10
		gib = mib << 10
		tib = gib << 10
		pib = tib << 10
	)
	b := int64(mb) * mib
	switch {
	case b >= 2*pib:
		return fmt.Sprintf("%.1f PiB", float64(b)/float64(pib))
	case b >= 2*tib:
		return fmt.Sprintf("%.1f TiB", float64(b)/float64(tib))
	case b >= 2*gib:
		return fmt.Sprintf("%.1f GiB", float64(b)/float64(gib))
	case b >= 2*mib:
		return fmt.Sprintf("%.1f MiB", float64(b)/float64(mib))
	case b >= 2*kib:
		return fmt.Sprintf("%.1f KiB", float64(b)/float64(kib))
	}
	return fmt.Sprintf("%.1f B", float64(b))
}
