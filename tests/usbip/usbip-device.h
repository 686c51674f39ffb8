/*
 * usbip-device.h: what the rig's user-space USB/IP devices share (tests/gps/usbip-gps.c,
 * tests/audio/usbip-mic.c): a device attached to vhci-hcd over a loopback TCP pair inside the
 * guest, the USB/IP command and reply headers, and small helpers. Define TOOL (the log prefix)
 * before including it. Test tooling, not part of the product.
 */
#ifndef USBIP_DEVICE_H
#define USBIP_DEVICE_H
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/usb/ch9.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static inline void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, TOOL ": ");
	vfprintf(stderr, fmt, ap);
	if (errno) fprintf(stderr, ": %s", strerror(errno));
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static inline void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, TOOL ": ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static inline uint64_t clock_ns(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
static inline uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
static inline uint64_t realtime_ns(void) { return clock_ns(CLOCK_REALTIME); }

static volatile sig_atomic_t stop;
static inline void on_signal(int sig) { (void)sig; stop = 1; }

static int sock = -1;

static inline int read_full(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r == 0) return -1;
		if (r < 0) { if (errno == EINTR) { if (stop) exit(0); continue; } return -1; }
		p += r; n -= (size_t)r;
	}
	return 0;
}

static inline void write_full(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t r = write(fd, p, n);
		if (r < 0) { if (errno == EINTR) continue; return; }
		p += r; n -= (size_t)r;
	}
}

static inline void tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sa, &sl) < 0)
		die("listen on 127.0.0.1");
	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect 127.0.0.1");
	*b = accept(l, NULL, NULL);
	if (*b < 0) die("accept");
	close(l);
	int one = 1;
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static inline int sysfs_write(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0) return -1;
	int r = write(fd, text, strlen(text)) < 0 ? -1 : 0;
	close(fd);
	return r;
}

enum { CMD_SUBMIT = 1, CMD_UNLINK = 2, RET_SUBMIT = 3, RET_UNLINK = 4 };
enum { DIR_OUT = 0, DIR_IN = 1 };
static inline uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static inline void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
static inline void put16le(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }

/* String descriptors: 0 the language (US English), 1 "blackbox", 2 `product`. */
static inline size_t string_desc(int idx, uint8_t *out, const char *product)
{
	const char *s;
	switch (idx) {
	case 0: out[0] = 4; out[1] = USB_DT_STRING; put16le(out + 2, 0x0409); return 4;
	case 1: s = "blackbox"; break;
	case 2: s = product; break;
	default: return 0;
	}
	size_t n = strlen(s);
	out[0] = (uint8_t)(2 + 2 * n); out[1] = USB_DT_STRING;
	for (size_t i = 0; i < n; i++) put16le(out + 2 + 2 * i, (uint8_t)s[i]);
	return 2 + 2 * n;
}

/* RET_SUBMIT: `actual` bytes (IN data follows), then `np` isochronous packet descriptors. */
static inline void send_ret_submit(uint32_t seqnum, int32_t status, uint32_t actual, const uint8_t *data, uint32_t np, const uint8_t *iso)
{
	uint8_t h[48] = { 0 };
	put32(h, RET_SUBMIT);
	put32(h + 4, seqnum);
	put32(h + 20, (uint32_t)status);
	put32(h + 24, actual);
	put32(h + 32, np);
	write_full(sock, h, sizeof h);
	if (data && actual) write_full(sock, data, actual);
	if (np) write_full(sock, iso, np * 16u);
}

/* RET_UNLINK for `seq`: -ECONNRESET when the URB was still held (`found`), else 0. */
static inline void send_ret_unlink(uint32_t seq, int found)
{
	uint8_t u[48] = { 0 };
	put32(u, RET_UNLINK);
	put32(u + 4, seq);
	put32(u + 20, (uint32_t)(found ? -ECONNRESET : 0));
	write_full(sock, u, sizeof u);
}

/* Plugs the device into vhci-hcd port 0 (bus 1, device `devnum`, `speed`). */
static inline void vhci_attach(unsigned devnum, int speed)
{
	int other;
	char buf[64];
	tcp_pair(&sock, &other);
	snprintf(buf, sizeof buf, "0 %d %u %d", other, (1u << 16) | devnum, speed);
	for (int i = 0; sysfs_write("/sys/devices/platform/vhci_hcd.0/attach", buf) < 0; i++) {
		if (i == 100) die("attach to vhci_hcd port 0");
		usleep(100000);   /* the port is freed a little after a detach */
	}
	close(other);
}

/* Unplugs it. */
static inline void vhci_detach(void)
{
	if (sysfs_write("/sys/devices/platform/vhci_hcd.0/detach", "0") < 0) say("detach: %s", strerror(errno));
	close(sock);
	sock = -1;
}
#endif
