/*
 * usbip-gps: test tooling for blackbox's GPS test against the kernel's cdc_acm driver
 * (scripts/qemu/gps-test). Runs inside the qemu guest; everything stays in the guest (TCP over
 * its own 127.0.0.1).
 *
 *   usbip-gps START_UNIX SESSION_S PAUSE_S SESSION_S [...]
 *
 * A USB/IP device on vhci-hcd (full speed) that is a u-blox 7 style GPS receiver: a CDC-ACM
 * function (communication interface with header/call-management/ACM/union descriptors and an
 * interrupt endpoint, data interface with bulk IN and OUT), so usbcore enumerates it and
 * cdc_acm makes /dev/ttyACM0 of it. It answers SET/GET_LINE_CODING and
 * SET_CONTROL_LINE_STATE, holds the driver's bulk-IN URBs and completes them with NMEA text.
 *
 * Every second of the guest's CLOCK_MONOTONIC it makes one fix: GPS time START_UNIX + k (k
 * counts seconds from the first attach, unplugged ones too), a position moving north-east at
 * 15 m/s from 47.285233 N 8.565250 E, sent as RMC, GGA and VTG with valid checksums. In every
 * session, seconds 3, 5 and 7 also carry a sentence blackbox must refuse, sent before that
 * second's good fix and each with a position 1 degree off the route:
 *   3: an RMC with a wrong checksum;  5: a void RMC (status V);  7: an RMC dated 2007 (the
 *   GPS week-rollover bug: 19.6 years early).
 * Sessions are separated by an unplug (vhci-hcd detach) of PAUSE_S seconds. Text that no
 * reader takes (the tty closed: no URB pending) is kept up to 1 KiB, oldest lines dropped,
 * like a receiver's buffer.
 *
 * Printed on stderr, for the test to compare with what blackbox stored:
 *   usbip-gps: fix UNIX LAT LON SPEED_MPS COURSE_DEG mono_ns T (every good fix made)
 *   usbip-gps: bad UNIX KIND                                  (every bad sentence)
 *   usbip-gps: session N attached|detached at mono_ns T ...
 *
 * Built static for aarch64 by scripts/qemu/gps-test. Test tooling, not part of the product.
 */
#define TOOL "usbip-gps"
#include "../usbip/usbip-device.h"

/* --- NMEA ------------------------------------------------------------------------------------ */

static char outbuf[1024];   /* text waiting for a bulk-IN URB */
static size_t outlen;
static size_t dropped;      /* bytes dropped because nobody read them */

static void queue_text(const char *s)
{
	size_t n = strlen(s);
	while (outlen + n > sizeof outbuf) {      /* drop the oldest line */
		char *nl = memchr(outbuf, '\n', outlen);
		size_t cut = nl ? (size_t)(nl - outbuf) + 1 : outlen;
		memmove(outbuf, outbuf + cut, outlen - cut);
		outlen -= cut;
		dropped += cut;
	}
	memcpy(outbuf + outlen, s, n);
	outlen += n;
}

/* "$BODY*HH\r\n", with the checksum of BODY xored with `spoil`. */
static void sentence(const char *body, uint8_t spoil)
{
	uint8_t x = 0;
	for (const char *p = body; *p; p++) x ^= (uint8_t)*p;
	char line[160];
	snprintf(line, sizeof line, "$%s*%02X\r\n", body, (unsigned)(x ^ spoil));
	queue_text(line);
}

static void ddmm(double deg, int lat, char *out, size_t n)
{
	double a = fabs(deg);
	int d = (int)a;
	double m = (a - d) * 60.0;
	if (lat) snprintf(out, n, "%02d%08.5f,%c", d, m, deg < 0 ? 'S' : 'N');
	else snprintf(out, n, "%03d%08.5f,%c", d, m, deg < 0 ? 'W' : 'E');
}

/* RMC for unix second `t` at (lat, lon); status 'A' or 'V'; `year_shift` years added to the date. */
static void rmc(int64_t t, double lat, double lon, double speed_mps, double course, char status, int year_shift, uint8_t spoil)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	char la[32], lo[32], body[140];
	ddmm(lat, 1, la, sizeof la);
	ddmm(lon, 0, lo, sizeof lo);
	snprintf(body, sizeof body, "GPRMC,%02d%02d%02d.00,%c,%s,%s,%.3f,%.2f,%02d%02d%02d,,,%c", tm.tm_hour, tm.tm_min, tm.tm_sec,
		 status, la, lo, speed_mps * 3600.0 / 1852.0, course, tm.tm_mday, tm.tm_mon + 1, (tm.tm_year + 1900 + year_shift) % 100,
		 status == 'A' ? 'A' : 'N');
	sentence(body, spoil);
}

static void gga(int64_t t, double lat, double lon)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	char la[32], lo[32], body[140];
	ddmm(lat, 1, la, sizeof la);
	ddmm(lon, 0, lo, sizeof lo);
	snprintf(body, sizeof body, "GPGGA,%02d%02d%02d.00,%s,%s,1,08,0.9,432.1,M,47.0,M,,", tm.tm_hour, tm.tm_min, tm.tm_sec, la, lo);
	sentence(body, 0);
}

static void vtg(double speed_mps, double course)
{
	char body[100];
	snprintf(body, sizeof body, "GPVTG,%.2f,T,,M,%.3f,N,%.3f,K,A", course, speed_mps * 3600.0 / 1852.0, speed_mps * 3.6);
	sentence(body, 0);
}

static int64_t start_unix;
static const double LAT0 = 47.285233, LON0 = 8.565250, SPEED = 15.0, COURSE = 45.0;

/* The fix of second k (and the refused sentences of second `in_session` of a session). */
static void make_second(uint64_t k, uint64_t in_session)
{
	int64_t t = start_unix + (int64_t)k;
	double north = SPEED * k * cos(COURSE * M_PI / 180.0), east = SPEED * k * sin(COURSE * M_PI / 180.0);
	double lat = LAT0 + north / 111320.0, lon = LON0 + east / (111320.0 * cos(LAT0 * M_PI / 180.0));
	if (in_session == 3) { rmc(t, lat + 1, lon, SPEED, COURSE, 'A', 0, 0x5a); say("bad %lld checksum", (long long)t); }
	if (in_session == 5) { rmc(t, lat + 1, lon, SPEED, COURSE, 'V', 0, 0); say("bad %lld void", (long long)t); }
	if (in_session == 7) { rmc(t, lat + 1, lon, SPEED, COURSE, 'A', -19, 0); say("bad %lld rollover", (long long)t); }
	rmc(t, lat, lon, SPEED, COURSE, 'A', 0, 0);
	gga(t, lat, lon);
	vtg(SPEED, COURSE);
	say("fix %lld %.7f %.7f %.2f %.1f mono_ns %llu", (long long)t, lat, lon, SPEED, COURSE, (unsigned long long)now_ns());
}

/* --- the device ------------------------------------------------------------------------------ */

/* u-blox 7 (1546:01a7), CDC class at the device level, full speed. */
static const uint8_t dev_desc[18] = {
	18, USB_DT_DEVICE, 0x00, 0x02, 0x02, 0x00, 0x00, 64,
	0x46, 0x15, 0xa7, 0x01, 0x00, 0x01, 1, 2, 0, 1,
};
static const uint8_t cfg_desc[67] = {
	9, USB_DT_CONFIG, 67, 0, 2, 1, 0, 0x80, 50,
	/* communication interface: CDC, ACM, AT commands */
	9, USB_DT_INTERFACE, 0, 0, 1, 0x02, 0x02, 0x01, 0,
	5, 0x24, 0x00, 0x10, 0x01,          /* header, CDC 1.10 */
	5, 0x24, 0x01, 0x00, 1,             /* call management: data interface 1 */
	4, 0x24, 0x02, 0x02,                /* ACM: line coding and serial state */
	5, 0x24, 0x06, 0, 1,                /* union: master 0, slave 1 */
	7, USB_DT_ENDPOINT, 0x82, 0x03, 8, 0, 16,
	/* data interface */
	9, USB_DT_INTERFACE, 1, 0, 2, 0x0a, 0x00, 0x00, 0,
	7, USB_DT_ENDPOINT, 0x81, 0x02, 64, 0, 0,
	7, USB_DT_ENDPOINT, 0x01, 0x02, 64, 0, 0,
};

static uint8_t line_coding[7] = { 0x80, 0x25, 0, 0, 0, 0, 8 };   /* 9600 8N1 */
static unsigned line_codings;                                     /* SET_LINE_CODING seen */

/* A control transfer. Returns the reply length (IN), 0 (OUT done), -1 (stall). */
static int control(const uint8_t *setup, const uint8_t *out, uint32_t out_len, uint8_t *reply)
{
	uint8_t type = setup[0], req = setup[1];
	uint16_t value = setup[2] | setup[3] << 8;
	if ((type & USB_TYPE_MASK) == USB_TYPE_STANDARD) {
		switch (req) {
		case USB_REQ_GET_DESCRIPTOR:
			switch (value >> 8) {
			case USB_DT_DEVICE: memcpy(reply, dev_desc, 18); return 18;
			case USB_DT_CONFIG: memcpy(reply, cfg_desc, sizeof cfg_desc); return sizeof cfg_desc;
			case USB_DT_STRING: { size_t n = string_desc(value & 0xff, reply, "blackbox usbip-gps test receiver"); return n ? (int)n : -1; }
			default: return -1;
			}
		case USB_REQ_GET_STATUS: reply[0] = reply[1] = 0; return 2;
		case USB_REQ_SET_CONFIGURATION: return 0;
		case USB_REQ_GET_CONFIGURATION: reply[0] = 1; return 1;
		case USB_REQ_SET_INTERFACE: case USB_REQ_CLEAR_FEATURE: case USB_REQ_SET_FEATURE: return 0;
		case USB_REQ_GET_INTERFACE: reply[0] = 0; return 1;
		}
		return -1;
	}
	if ((type & USB_TYPE_MASK) == USB_TYPE_CLASS) {
		switch (req) {
		case 0x20: if (out_len >= 7) memcpy(line_coding, out, 7); line_codings++; return 0;   /* SET_LINE_CODING */
		case 0x21: memcpy(reply, line_coding, 7); return 7;                                  /* GET_LINE_CODING */
		case 0x22: case 0x23: return 0;                          /* SET_CONTROL_LINE_STATE, SEND_BREAK */
		}
	}
	say("stall: request %02x %02x value %04x", type, req, value);
	return -1;
}

/* URBs held: bulk IN (completed with text) and interrupt IN (never completed). */
struct held { uint32_t seq, len; int bulk; };
static struct held held[64];
static int nheld;
static uint64_t bytes_sent;

static void flush_text(void)
{
	while (outlen) {
		int i;
		for (i = 0; i < nheld && !held[i].bulk; i++) {}
		if (i == nheld) return;
		uint32_t n = held[i].len < outlen ? held[i].len : (uint32_t)outlen;
		send_ret_submit(held[i].seq, 0, n, (const uint8_t *)outbuf, 0, NULL);
		memmove(outbuf, outbuf + n, outlen - n);
		outlen -= n;
		bytes_sent += n;
		memmove(&held[i], &held[i + 1], (size_t)(nheld - i - 1) * sizeof held[0]);
		nheld--;
	}
}

static int session_no;

static void attach(void)
{
	vhci_attach(3, USB_SPEED_FULL);
	nheld = 0;
	say("session %d attached at mono_ns %llu", session_no, (unsigned long long)now_ns());
}

static void detach(void)
{
	vhci_detach();
	say("session %d detached at mono_ns %llu; %llu bytes sent, %zu dropped unread, %u line codings set",
	    session_no, (unsigned long long)now_ns(), (unsigned long long)bytes_sent, dropped, line_codings);
}

/* Serves the device until mono time `until`, making a fix every second from `first_k`. */
static uint64_t t_origin;   /* mono ns of k = 0 */

static void serve(uint64_t until, uint64_t session_start_k)
{
	static uint8_t out[65536], reply[65536];
	uint64_t next_k = (now_ns() - t_origin + 999999999u) / 1000000000u;
	while (now_ns() < until) {
		if (stop) { detach(); exit(0); }
		uint64_t due = t_origin + next_k * 1000000000u;
		uint64_t now = now_ns();
		if (now >= due) {
			make_second(next_k, next_k - session_start_k);
			next_k++;
			flush_text();
			continue;
		}
		int wait_ms = (int)((due - now) / 1000000u) + 1;
		struct pollfd p = { .fd = sock, .events = POLLIN };
		int r = poll(&p, 1, wait_ms);
		if (r < 0 && errno != EINTR) die("poll");
		if (r <= 0) continue;
		uint8_t h[48];
		if (read_full(sock, h, sizeof h) < 0) { errno = 0; die("usbip connection closed"); }
		uint32_t cmd = be32(h), seq = be32(h + 4), dir = be32(h + 12), ep = be32(h + 16);
		if (cmd == CMD_SUBMIT) {
			uint32_t len = be32(h + 24);
			if (len > sizeof out) { errno = 0; die("transfer of %u bytes", len); }
			if (dir == DIR_OUT && len && read_full(sock, out, len) < 0) { errno = 0; die("usbip connection closed"); }
			if (ep == 0) {
				int n = control(h + 40, out, dir == DIR_OUT ? len : 0, reply);
				if (n < 0) send_ret_submit(seq, -EPIPE, 0, NULL, 0, NULL);
				else if (dir == DIR_IN) send_ret_submit(seq, 0, (uint32_t)n < len ? (uint32_t)n : len, reply, 0, NULL);
				else send_ret_submit(seq, 0, len, NULL, 0, NULL);
			} else if (dir == DIR_OUT) {
				send_ret_submit(seq, 0, len, NULL, 0, NULL);      /* bulk OUT: taken, ignored */
			} else {
				if (nheld == 64) { errno = 0; die("more than 64 URBs held"); }
				held[nheld++] = (struct held){ .seq = seq, .len = len, .bulk = ep == 1 };
				flush_text();
			}
		} else if (cmd == CMD_UNLINK) {
			uint32_t victim = be32(h + 20);
			int found = 0;
			for (int i = 0; i < nheld && !found; i++)
				if (held[i].seq == victim) {
					memmove(&held[i], &held[i + 1], (size_t)(nheld - i - 1) * sizeof held[0]);
					nheld--;
					found = 1;
				}
			send_ret_unlink(seq, found);
		} else {
			errno = 0; die("unknown usbip command %u", cmd);
		}
	}
}

int main(int argc, char **argv)
{
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IOLBF, 0);
	if (argc < 3 || argc % 2 != 1) {
		fprintf(stderr, "usage: usbip-gps START_UNIX SESSION_S [PAUSE_S SESSION_S]...\n");
		return 2;
	}
	start_unix = strtoll(argv[1], NULL, 10);
	t_origin = now_ns();
	for (int a = 2; a < argc; a += 2) {
		if (a > 2) {
			uint64_t pause = strtoull(argv[a - 1], NULL, 10);
			say("unplugged for %llu s", (unsigned long long)pause);
			usleep((useconds_t)(pause * 1000000u));
		}
		session_no++;
		attach();
		uint64_t k0 = (now_ns() - t_origin + 999999999u) / 1000000000u;
		serve(now_ns() + strtoull(argv[a], NULL, 10) * 1000000000u, k0);
		detach();
	}
	say("script done");
	return 0;
}
