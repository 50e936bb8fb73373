package kube

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
)

// HostIP returns this machine's IPv4 address on the interface of its default
// route: an address that pods (and other hosts) reach, unlike 127.0.0.1.
// Tests bind registries and git servers there when a pod must reach them.
func HostIP() (net.IP, error) {
	iface, err := defaultRouteInterface()
	if err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("kube: default route interface %s: %w", iface, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("kube: addresses of %s: %w", iface, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.To4(), nil
		}
	}
	return nil, fmt.Errorf("kube: interface %s (default route) has no IPv4 address", iface)
}

// defaultRouteInterface reads the interface of the IPv4 default route from
// /proc/net/route.
func defaultRouteInterface() (string, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		// Iface Destination Gateway Flags ... Mask: the default route has
		// destination and mask 0.
		if len(fields) >= 8 && fields[1] == "00000000" && fields[7] == "00000000" {
			return fields[0], nil
		}
	}
	if err := s.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("kube: no IPv4 default route in /proc/net/route")
}
