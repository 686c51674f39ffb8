"""A disk that loses what it was not told to flush: an NBD server for scripts/powercut.

qemu's data disk is served from an image file over a Unix socket (no network). Like an SD card
with a volatile write cache, every write the guest sends is acknowledged at once but only kept
in memory, in a *volatile log*, until the guest sends FLUSH; a FLUSH writes the log to the image
file. Reads see the log (the guest reads what it wrote, as from a real cache).

When the power goes (qemu is killed, the connection drops) `cut()` decides what the "card" kept
of the unflushed log: every write is applied or dropped at random (so later writes may land
while earlier ones are lost: reordering), at 512-byte-sector granularity per 4 KiB block, and
the last 4 KiB block written is torn — only a random prefix of its sectors reaches the image,
the rest keeps its old bytes. Then the image holds what a card would hold after the cut.

Protocol: NBD fixed newstyle handshake (NBD_OPT_GO / NBD_OPT_EXPORT_NAME), simple replies,
transmission flags HAS_FLAGS | SEND_FLUSH. No FUA (qemu then flushes after a FUA write), no
TRIM/WRITE_ZEROES (qemu writes zeros instead). Spec: github.com/NetworkBlockDevice/nbd
doc/proto.md.
"""
import os
import random
import socket
import struct
import threading
import time

NBD_MAGIC = b"NBDMAGIC"
IHAVEOPT = b"IHAVEOPT"
REPLY_MAGIC_OPT = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES = 1, 2
T_HAS_FLAGS, T_SEND_FLUSH = 1, 4
OPT_EXPORT_NAME, OPT_ABORT, OPT_INFO, OPT_GO = 1, 2, 6, 7
REP_ACK, REP_INFO, REP_ERR_UNSUP = 1, 3, 0x80000001
INFO_EXPORT = 0
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH = 0, 1, 2, 3
EINVAL, ENOSPC = 22, 28
SECTOR, BLOCK = 512, 4096


def _recv(conn, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


class VolatileDisk:
    """The image file plus the volatile log of unflushed writes."""

    def __init__(self, path, rng):
        self.path = path
        self.rng = rng
        self.fd = os.open(path, os.O_RDWR)
        self.size = os.fstat(self.fd).st_size
        self.log = []          # [(offset, bytes)] in arrival order since the last FLUSH
        self.overlay = {}      # sector number -> 512 bytes, the newest unflushed content
        self.flushes = 0
        self.writes = 0

    def read(self, off, length):
        data = bytearray(os.pread(self.fd, length, off))
        if self.overlay:
            first, last = off // SECTOR, (off + length - 1) // SECTOR
            if last - first < len(self.overlay):
                hits = (s for s in range(first, last + 1) if s in self.overlay)
            else:
                hits = (s for s in self.overlay if first <= s <= last)
            for s in hits:
                sec = self.overlay[s]
                a, b = max(s * SECTOR, off), min((s + 1) * SECTOR, off + length)
                data[a - off:b - off] = sec[a - s * SECTOR:b - s * SECTOR]
        return bytes(data)

    def write(self, off, data):
        self.writes += 1
        self.log.append((off, data))
        # The overlay holds whole sectors: merge partial ones with what is there now.
        first, last = off // SECTOR, (off + len(data) - 1) // SECTOR
        for s in range(first, last + 1):
            cur = self.overlay.get(s)
            if cur is None:
                cur = os.pread(self.fd, SECTOR, s * SECTOR).ljust(SECTOR, b"\0")
            a, b = max(s * SECTOR, off), min((s + 1) * SECTOR, off + len(data))
            sec = bytearray(cur)
            sec[a - s * SECTOR:b - s * SECTOR] = data[a - off:b - off]
            self.overlay[s] = bytes(sec)

    def flush(self):
        self.flushes += 1
        for off, data in self.log:
            os.pwrite(self.fd, data, off)
        self.log.clear()
        self.overlay.clear()

    def cut(self):
        """The power goes: keep a random subset of the unflushed writes (per 4 KiB piece), tear
        the last block written. Returns a summary dict."""
        pieces = []   # (offset, bytes), each within one 4 KiB block, in arrival order
        for off, data in self.log:
            pos = 0
            while pos < len(data):
                o = off + pos
                n = min(BLOCK - o % BLOCK, len(data) - pos)
                pieces.append((o, data[pos:pos + n]))
                pos += n
        kept = dropped = 0
        torn = None
        for i, (o, d) in enumerate(pieces):
            if i == len(pieces) - 1:
                # The block being written when the power went: a prefix of its sectors lands.
                sectors = (len(d) + SECTOR - 1) // SECTOR
                k = self.rng.randrange(1, sectors) if sectors > 1 else self.rng.randrange(0, 2)
                os.pwrite(self.fd, d[:k * SECTOR], o)
                torn = {"offset": o, "sectors_written": k, "sectors": sectors}
            elif self.rng.random() < 0.5:
                os.pwrite(self.fd, d, o)
                kept += 1
            else:
                dropped += 1
        summary = {"unflushed_writes": len(self.log), "pieces": len(pieces), "kept": kept,
                   "dropped": dropped, "torn": torn, "flushes": self.flushes, "writes": self.writes}
        self.log.clear()
        self.overlay.clear()
        return summary

    def close(self):
        os.close(self.fd)


class VolatileNbdServer:
    """Serves one VolatileDisk to one client at a time on a Unix socket, in a thread. When the
    client goes away without a clean disconnect the cut is applied (see cut()). wait_cut()
    returns its summary."""

    def __init__(self, image, sock_path, seed):
        self.disk = VolatileDisk(image, random.Random(seed))
        self.sock_path = sock_path
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(sock_path)
        self.srv.listen(1)
        self.done = threading.Event()
        self.frozen = threading.Event()     # set when an armed cut froze the disk
        self.released = threading.Event()
        self.arm_count = None
        self.arm_on = None
        # Seconds every FLUSH takes before it is carried out and answered (a slow SD card:
        # scripts/qemu/slowdisk.py). Requests are served one at a time, as a card does, so
        # everything queued behind a flush waits too. Changed at any time by the caller.
        self.flush_latency = 0.0
        self.summary = None
        self.error = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def arm(self, count, on="write"):
        """Freeze the disk when the `count`-th request of kind `on` from now arrives:
        "write": it is logged but not answered (the power goes with that write in flight);
        "flush": it is not carried out (the power goes just before the cache would have been
        written: every write of the burst was acknowledged, none is safe). Nothing after it is
        served; `frozen` is set so the caller cuts the power."""
        self.arm_on = on
        self.arm_count = max(1, count)

    def _armed(self, kind):
        if self.arm_on != kind:
            return False
        self.arm_count -= 1
        if self.arm_count:
            return False
        self.frozen.set()
        self.released.wait(120)
        return True

    def release(self):
        """After the power cut: let a frozen server thread see the connection gone."""
        self.released.set()

    def wait_cut(self, timeout=30):
        if not self.done.wait(timeout):
            raise TimeoutError("the NBD server did not see the client go")
        if self.error:
            raise RuntimeError(f"NBD server: {self.error}")
        return self.summary

    def _serve(self):
        clean = False
        try:
            conn, _ = self.srv.accept()
            with conn:
                if self._handshake(conn):
                    clean = self._transmission(conn)
        except (EOFError, ConnectionError, OSError):
            pass
        except Exception as e:  # a protocol surprise: report it, do not hang the test
            self.error = repr(e)
        finally:
            self.summary = {"clean": True} if clean else self.disk.cut()
            if clean:
                self.disk.flush()
            self.disk.close()
            self.srv.close()
            try:
                os.unlink(self.sock_path)
            except OSError:
                pass
            self.done.set()

    def _opt_reply(self, conn, opt, rtype, data=b""):
        conn.sendall(struct.pack(">QIII", REPLY_MAGIC_OPT, opt, rtype, len(data)) + data)

    def _handshake(self, conn):
        conn.sendall(NBD_MAGIC + IHAVEOPT + struct.pack(">H", FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES))
        (cflags,) = struct.unpack(">I", _recv(conn, 4))
        tflags = T_HAS_FLAGS | T_SEND_FLUSH
        while True:
            magic, opt, length = struct.unpack(">8sII", _recv(conn, 16))
            if magic != IHAVEOPT:
                raise RuntimeError(f"bad option magic {magic!r}")
            data = _recv(conn, length) if length else b""
            if opt == OPT_EXPORT_NAME:
                pad = b"" if cflags & FLAG_NO_ZEROES else b"\0" * 124
                conn.sendall(struct.pack(">QH", self.disk.size, tflags) + pad)
                return True
            if opt in (OPT_INFO, OPT_GO):
                self._opt_reply(conn, opt, REP_INFO, struct.pack(">HQH", INFO_EXPORT, self.disk.size, tflags))
                self._opt_reply(conn, opt, REP_ACK)
                if opt == OPT_GO:
                    return True
            elif opt == OPT_ABORT:
                self._opt_reply(conn, opt, REP_ACK)
                return False
            else:  # structured replies, meta contexts, TLS, lists: not offered
                self._opt_reply(conn, opt, REP_ERR_UNSUP)

    def _reply(self, conn, handle, err=0, data=b""):
        conn.sendall(struct.pack(">IIQ", SIMPLE_REPLY_MAGIC, err, handle) + data)

    def _transmission(self, conn):
        disk = self.disk
        while True:
            magic, _flags, cmd, handle, off, length = struct.unpack(">IHHQQI", _recv(conn, 28))
            if magic != REQUEST_MAGIC:
                raise RuntimeError(f"bad request magic {magic:#x}")
            if cmd == CMD_WRITE:
                data = _recv(conn, length)
                if off + length > disk.size:
                    self._reply(conn, handle, ENOSPC)
                else:
                    disk.write(off, data)
                    if self._armed("write"):
                        raise EOFError
                    self._reply(conn, handle)
            elif cmd == CMD_READ:
                if off + length > disk.size:
                    self._reply(conn, handle, EINVAL)
                else:
                    self._reply(conn, handle, 0, disk.read(off, length))
            elif cmd == CMD_FLUSH:
                if self._armed("flush"):
                    raise EOFError
                if self.flush_latency > 0:
                    time.sleep(self.flush_latency)
                disk.flush()
                self._reply(conn, handle)
            elif cmd == CMD_DISC:
                return True
            else:
                self._reply(conn, handle, EINVAL)
