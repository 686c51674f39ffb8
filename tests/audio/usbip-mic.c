/*
 * usbip-mic: test tooling for blackbox's audio test (scripts/qemu/mic-test). Runs inside the
 * qemu guest; everything stays in the guest (TCP over its own 127.0.0.1).
 *
 *   usbip-mic SESSION_S PAUSE_S SESSION_S [...]
 *
 * A USB/IP device on vhci-hcd (full speed) that is a USB Audio Class 1 microphone: an
 * AudioControl interface (input terminal "microphone" -> output terminal "USB streaming") and
 * an AudioStreaming interface whose alternate setting 1 has one asynchronous isochronous IN
 * endpoint, PCM 16-bit mono at 16 kHz. usbcore enumerates it and snd-usb-audio makes a sound
 * card of it (/dev/snd/pcmC*D0c). It answers SET_INTERFACE and the sampling-frequency
 * requests and completes the driver's isochronous URBs with the samples due by then (real
 * time, CLOCK_MONOTONIC, up to 128 a packet: under TCG the guest asks for fewer packets than
 * a real bus carries, so packets carry more samples and the rate stays 16000 a second).
 *
 * The signal: silence with a 20 ms 1 kHz burst at every 16000th sample of a session. Each
 * burst is printed with the time it was "captured": the stream's start (CLOCK_REALTIME at
 * SET_INTERFACE) plus its sample number / 16000, as a microphone's ADC would; it reaches the
 * host later, with the packet that carries it:
 *   usbip-mic: burst K at realtime_ns T
 * Sessions are separated by an unplug (vhci-hcd detach) of PAUSE_S seconds.
 *
 * Built static for aarch64 by scripts/qemu/mic-test. Test tooling, not part of the product.
 */
#define TOOL "usbip-mic"
#include "../usbip/usbip-device.h"

#define RATE 16000
#define MAXPKT 256           /* bytes: up to 128 samples a packet */
#define EP_IN 0x81

static const uint8_t dev_desc[18] = {
	18, USB_DT_DEVICE, 0x10, 0x01, 0x00, 0x00, 0x00, 64,
	0x09, 0x12, 0x01, 0xbb, 0x00, 0x01, 1, 2, 0, 1,
};
static const uint8_t cfg_desc[100] = {
	9, USB_DT_CONFIG, 100, 0, 2, 1, 0, 0x80, 50,
	/* AudioControl */
	9, USB_DT_INTERFACE, 0, 0, 0, 0x01, 0x01, 0x00, 0,
	9, 0x24, 0x01, 0x00, 0x01, 30, 0, 1, 1,                 /* header: ADC 1.00, total 30, one AS interface: 1 */
	12, 0x24, 0x02, 1, 0x01, 0x02, 0, 1, 0x00, 0x00, 0, 0,  /* input terminal 1: microphone, mono */
	9, 0x24, 0x03, 2, 0x01, 0x01, 0, 1, 0,                  /* output terminal 2: USB streaming, from 1 */
	/* AudioStreaming: alt 0 (no bandwidth), alt 1 (16-bit mono 16 kHz) */
	9, USB_DT_INTERFACE, 1, 0, 0, 0x01, 0x02, 0x00, 0,
	9, USB_DT_INTERFACE, 1, 1, 1, 0x01, 0x02, 0x00, 0,
	7, 0x24, 0x01, 2, 1, 0x01, 0x00,                        /* AS general: terminal 2, delay 1, PCM */
	11, 0x24, 0x02, 1, 1, 2, 16, 1, 0x80, 0x3e, 0x00,       /* format type I: mono, 2 bytes, 16 bits, 16000 Hz */
	9, USB_DT_ENDPOINT, EP_IN, 0x05, MAXPKT & 0xff, MAXPKT >> 8, 1, 0, 0,   /* iso async IN */
	7, 0x25, 0x01, 0x01, 0, 0, 0,                           /* CS endpoint: sampling frequency control */
};

static int streaming;          /* alt setting 1 selected */
static uint64_t t_stream;      /* mono ns of sample 0 of this session */
static uint64_t t_stream_rt;   /* the same, CLOCK_REALTIME */
static uint64_t sent;          /* samples sent this session */
static int session_no;

/* A control transfer. Returns the reply length (IN), 0 (OUT done), -1 (stall). */
static int control(const uint8_t *setup, const uint8_t *out, uint32_t out_len, uint8_t *reply)
{
	uint8_t type = setup[0], req = setup[1];
	uint16_t value = setup[2] | setup[3] << 8, index = setup[4] | setup[5] << 8;
	(void)out; (void)out_len;
	if ((type & USB_TYPE_MASK) == USB_TYPE_STANDARD) {
		switch (req) {
		case USB_REQ_GET_DESCRIPTOR:
			switch (value >> 8) {
			case USB_DT_DEVICE: memcpy(reply, dev_desc, 18); return 18;
			case USB_DT_CONFIG: memcpy(reply, cfg_desc, sizeof cfg_desc); return sizeof cfg_desc;
			case USB_DT_STRING: { size_t n = string_desc(value & 0xff, reply, "blackbox usbip-mic test microphone"); return n ? (int)n : -1; }
			default: return -1;
			}
		case USB_REQ_GET_STATUS: reply[0] = reply[1] = 0; return 2;
		case USB_REQ_SET_CONFIGURATION: return 0;
		case USB_REQ_GET_CONFIGURATION: reply[0] = 1; return 1;
		case USB_REQ_SET_INTERFACE:
			if (index == 1) {
				int on = value == 1;
				if (on && !streaming) { t_stream = now_ns(); t_stream_rt = realtime_ns(); sent = 0; say("session %d: streaming on", session_no); }
				if (!on && streaming) say("session %d: streaming off after %llu samples", session_no, (unsigned long long)sent);
				streaming = on;
			}
			return 0;
		case USB_REQ_CLEAR_FEATURE: case USB_REQ_SET_FEATURE: return 0;
		case USB_REQ_GET_INTERFACE: reply[0] = (uint8_t)streaming; return 1;
		}
		return -1;
	}
	if ((type & USB_TYPE_MASK) == USB_TYPE_CLASS) {
		/* Sampling frequency (endpoint): SET_CUR 0x01, GET_CUR 0x81 (and MIN/MAX/RES). */
		if ((type & USB_RECIP_MASK) == USB_RECIP_ENDPOINT && (value >> 8) == 0x01) {
			if (req == 0x01) return 0;
			reply[0] = RATE & 0xff; reply[1] = (RATE >> 8) & 0xff; reply[2] = RATE >> 16;
			return 3;
		}
	}
	say("stall: request %02x %02x value %04x index %04x", type, req, value, index);
	return -1;
}

static int16_t sample_at(uint64_t n)
{
	uint64_t in = n % RATE;
	return in < RATE / 50 ? (int16_t)(12000.0 * sin(2 * M_PI * 1000.0 * (double)in / RATE)) : 0;
}

/* Fills an isochronous IN URB with the samples due by now, up to MAXPKT a packet. */
static void complete_iso(uint32_t seq, uint32_t np, uint8_t *iso)
{
	static uint8_t buf[64 * MAXPKT];
	uint64_t due = streaming ? (now_ns() - t_stream) * RATE / 1000000000u : sent;
	uint32_t total = 0;
	for (uint32_t i = 0; i < np; i++) {
		uint8_t *d = iso + 16 * i;
		uint32_t room = be32(d + 4) / 2, n = 0;
		if (room > MAXPKT / 2) room = MAXPKT / 2;
		while (streaming && n < room && sent < due) {
			if (sent % RATE == 0)
				say("burst %llu at realtime_ns %llu (sent %.1f ms later)", (unsigned long long)(sent / RATE),
				    (unsigned long long)(t_stream_rt + sent / RATE * 1000000000ull),
				    (double)(realtime_ns() - t_stream_rt - sent / RATE * 1000000000ull) / 1e6);
			int16_t v = sample_at(sent++);
			buf[total + 2 * n] = (uint8_t)v;
			buf[total + 2 * n + 1] = (uint8_t)(v >> 8);
			n++;
		}
		put32(d + 8, 2 * n);                   /* actual_length */
		put32(d + 12, 0);
		total += 2 * n;
	}
	send_ret_submit(seq, 0, total, buf, np, iso);
}

static void attach(void)
{
	vhci_attach(4, USB_SPEED_FULL);
	streaming = 0;
	say("session %d attached at mono_ns %llu", session_no, (unsigned long long)now_ns());
}

static void detach(void)
{
	vhci_detach();
	say("session %d detached at mono_ns %llu after %llu samples", session_no, (unsigned long long)now_ns(), (unsigned long long)sent);
}

struct pending { uint32_t seq, np; uint64_t due; uint8_t iso[64 * 16]; };

static void serve(uint64_t until)
{
	static uint8_t out[65536], reply[1024];
	static struct pending q[32];
	size_t qn = 0;
	while (now_ns() < until) {
		if (stop) { detach(); exit(0); }
		int timeout = 50;
		if (qn) {
			uint64_t now = now_ns();
			timeout = q[0].due > now ? (int)((q[0].due - now) / 1000000u) + 1 : 0;
		}
		struct pollfd p = { .fd = sock, .events = POLLIN };
		int r = poll(&p, 1, timeout);
		if (r < 0 && errno != EINTR) die("poll");
		if (r > 0) {
			uint8_t h[48];
			if (read_full(sock, h, sizeof h) < 0) { errno = 0; die("usbip connection closed"); }
			uint32_t cmd = be32(h), seq = be32(h + 4), dir = be32(h + 12), ep = be32(h + 16);
			if (cmd == CMD_SUBMIT) {
				uint32_t len = be32(h + 24), np = be32(h + 32);
				if (dir == DIR_OUT && len) {
					if (len > sizeof out) { errno = 0; die("OUT transfer of %u bytes", len); }
					if (read_full(sock, out, len) < 0) { errno = 0; die("usbip connection closed"); }
				}
				if (ep == (EP_IN & 0x7f) && dir == DIR_IN) {
					if (np == 0 || np > 64 || qn == 32) { errno = 0; die("unexpected URB (%u packets, %zu queued)", np, qn); }
					struct pending *e = &q[qn++];
					e->seq = seq; e->np = np;
					if (read_full(sock, e->iso, np * 16u) < 0) { errno = 0; die("usbip connection closed"); }
					/* Completed np ms after the previous one (a full-speed frame per packet). */
					uint64_t prev = qn > 1 ? q[qn - 2].due : now_ns();
					e->due = (prev > now_ns() ? prev : now_ns()) + np * 1000000ull;
				} else if (ep == 0) {
					int n = control(h + 40, out, dir == DIR_OUT ? len : 0, reply);
					if (n < 0) send_ret_submit(seq, -EPIPE, 0, NULL, 0, NULL);
					else if (dir == DIR_IN) send_ret_submit(seq, 0, (uint32_t)n < len ? (uint32_t)n : len, reply, 0, NULL);
					else send_ret_submit(seq, 0, len, NULL, 0, NULL);
				} else {
					say("URB for endpoint %u", ep);
					send_ret_submit(seq, -EPIPE, 0, NULL, 0, NULL);
				}
			} else if (cmd == CMD_UNLINK) {
				uint32_t victim = be32(h + 20);
				int found = 0;
				for (size_t i = 0; i < qn && !found; i++) {
					if (q[i].seq != victim) continue;
					memmove(q + i, q + i + 1, (qn - i - 1) * sizeof *q);
					qn--;
					found = 1;
				}
				send_ret_unlink(seq, found);
			} else {
				errno = 0; die("unknown usbip command %u", cmd);
			}
		}
		while (qn && now_ns() >= q[0].due) {
			complete_iso(q[0].seq, q[0].np, q[0].iso);
			memmove(q, q + 1, (qn - 1) * sizeof *q);
			qn--;
		}
	}
}

int main(int argc, char **argv)
{
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IOLBF, 0);
	if (argc < 2 || argc % 2 != 0) {
		fprintf(stderr, "usage: usbip-mic SESSION_S [PAUSE_S SESSION_S]...\n");
		return 2;
	}
	for (int a = 1; a < argc; a += 2) {
		if (a > 1) {
			uint64_t pause = strtoull(argv[a - 1], NULL, 10);
			say("unplugged for %llu s", (unsigned long long)pause);
			usleep((useconds_t)(pause * 1000000u));
		}
		session_no++;
		attach();
		serve(now_ns() + strtoull(argv[a], NULL, 10) * 1000000000u);
		detach();
	}
	say("script done");
	return 0;
}
