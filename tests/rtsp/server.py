#!/usr/bin/python3
"""An RTSP server on 127.0.0.1 for the tests: Debian's GStreamer RTSP server (gst-rtsp-server
through python3-gi) serving the H.264 of an MP4 file as it is (demuxed and packetized, never
re-encoded), in real time, over RTP interleaved in the RTSP connection (TCP only).

    server.py PORT FILE.mp4 [USER PASSWORD [basic|digest]]

Serves rtsp://127.0.0.1:PORT/cam. With USER and PASSWORD, only that user may play it, with
Digest authentication (or Basic). Each client gets the file from its start. Prints
"ready" once it listens."""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

Gst.init(None)
port, path = sys.argv[1], sys.argv[2]
user, password = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else (None, None)
scheme = sys.argv[5] if len(sys.argv) > 5 else "digest"

server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f'( filesrc location="{path}" ! qtdemux ! h264parse ! '
    "rtph264pay name=pay0 pt=96 config-interval=-1 )"
)
factory.set_shared(False)
factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
if user:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "viewer")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    auth.add_digest(user, password, token)
    auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC if scheme == "basic" else GstRtsp.RTSPAuthMethod.DIGEST)
    server.set_auth(auth)
    factory.add_role_from_structure(Gst.Structure.from_string(
        "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")[0])
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    sys.exit(f"rtsp server: cannot listen on 127.0.0.1:{port}")
print("ready", flush=True)
GLib.MainLoop().run()
