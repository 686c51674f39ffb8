/*
 * pcmplay: test tooling for blackbox's audio test (scripts/qemu/audio-test). Plays into an
 * ALSA playback PCM (snd-aloop's, whose capture side blackbox records) through the kernel's
 * PCM ioctls, so the guest needs no alsa-lib.
 *
 *   pcmplay DEVICE SECONDS
 *
 * 16 kHz mono S16_LE, 20 ms periods, an 80 ms buffer kept nearly full. The signal is silence
 * with a 20 ms 1 kHz burst (amplitude 12000) at the start of every second of the signal.
 * For each burst it prints when it plays, from the buffer's fill when the period holding it
 * is written (CLOCK_REALTIME; the same clock blackbox stamps with):
 *   pcmplay: burst K at realtime_ns T
 * and at the end: pcmplay: done, N frames written, U underruns.
 *
 * Built static for aarch64 by scripts/qemu/audio-test. Test tooling, not part of the product.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sound/asound.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define RATE 16000
#define PERIOD 320
#define BUFFER 1280

static void die(const char *what)
{
	fprintf(stderr, "pcmplay: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void set_mask(struct snd_pcm_hw_params *p, int param, unsigned v)
{
	struct snd_mask *m = &p->masks[param - SNDRV_PCM_HW_PARAM_FIRST_MASK];
	memset(m, 0, sizeof *m);
	m->bits[v >> 5] = 1u << (v & 31);
}

static void set_int(struct snd_pcm_hw_params *p, int param, unsigned v)
{
	struct snd_interval *i = &p->intervals[param - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL];
	i->min = i->max = v;
	i->integer = 1;
}

static uint64_t realtime_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: pcmplay DEVICE SECONDS\n");
		return 2;
	}
	setvbuf(stderr, NULL, _IOLBF, 0);
	int fd = open(argv[1], O_RDWR | O_CLOEXEC);
	if (fd < 0) die(argv[1]);
	long seconds = atol(argv[2]);
	struct snd_pcm_hw_params hw;
	memset(&hw, 0, sizeof hw);
	for (int i = 0; i <= SNDRV_PCM_HW_PARAM_LAST_MASK - SNDRV_PCM_HW_PARAM_FIRST_MASK; i++)
		memset(&hw.masks[i], 0xff, sizeof hw.masks[i]);
	for (int i = 0; i <= SNDRV_PCM_HW_PARAM_LAST_INTERVAL - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL; i++)
		hw.intervals[i].max = ~0u;
	hw.rmask = ~0u;
	hw.info = ~0u;
	set_mask(&hw, SNDRV_PCM_HW_PARAM_ACCESS, SNDRV_PCM_ACCESS_RW_INTERLEAVED);
	set_mask(&hw, SNDRV_PCM_HW_PARAM_FORMAT, SNDRV_PCM_FORMAT_S16_LE);
	set_mask(&hw, SNDRV_PCM_HW_PARAM_SUBFORMAT, SNDRV_PCM_SUBFORMAT_STD);
	set_int(&hw, SNDRV_PCM_HW_PARAM_CHANNELS, 1);
	set_int(&hw, SNDRV_PCM_HW_PARAM_RATE, RATE);
	set_int(&hw, SNDRV_PCM_HW_PARAM_PERIOD_SIZE, PERIOD);
	set_int(&hw, SNDRV_PCM_HW_PARAM_BUFFER_SIZE, BUFFER);
	if (ioctl(fd, SNDRV_PCM_IOCTL_HW_PARAMS, &hw) < 0) die("HW_PARAMS");
	struct snd_pcm_sw_params sw;
	memset(&sw, 0, sizeof sw);
	sw.avail_min = PERIOD;
	sw.start_threshold = BUFFER - PERIOD;
	sw.stop_threshold = BUFFER;
	sw.period_step = 1;
	if (ioctl(fd, SNDRV_PCM_IOCTL_SW_PARAMS, &sw) < 0) die("SW_PARAMS");
	if (ioctl(fd, SNDRV_PCM_IOCTL_PREPARE) < 0) die("PREPARE");
	static int16_t buf[PERIOD];
	long total = seconds * RATE, written = 0, underruns = 0;
	while (written < total) {
		for (int i = 0; i < PERIOD; i++) {
			long n = written + i;
			long in_sec = n % RATE;
			buf[i] = in_sec < RATE / 50 ? (int16_t)(12000.0 * sin(2 * M_PI * 1000.0 * in_sec / RATE)) : 0;
		}
		/* A burst starting in this period: when it plays. */
		long first_in = (written % RATE) == 0 ? 0 : RATE - written % RATE;
		if (first_in < PERIOD) {
			snd_pcm_sframes_t delay = 0;
			if (ioctl(fd, SNDRV_PCM_IOCTL_DELAY, &delay) < 0) delay = 0;
			uint64_t at = realtime_ns() + (uint64_t)((delay + first_in) * 1000000000ll / RATE);
			fprintf(stderr, "pcmplay: burst %ld at realtime_ns %llu\n", (written + first_in) / RATE, (unsigned long long)at);
		}
		struct snd_xferi x = { .buf = buf, .frames = PERIOD };
		if (ioctl(fd, SNDRV_PCM_IOCTL_WRITEI_FRAMES, &x) < 0) {
			if (errno == EPIPE) {
				underruns++;
				if (ioctl(fd, SNDRV_PCM_IOCTL_PREPARE) < 0) die("PREPARE");
				continue;
			}
			die("WRITEI");
		}
		written += x.result;
	}
	ioctl(fd, SNDRV_PCM_IOCTL_DRAIN);
	fprintf(stderr, "pcmplay: done, %ld frames written, %ld underruns\n", written, underruns);
	return 0;
}
