"""A small RTSP server on loopback for the stream tests (GStreamer's gst-rtsp-server).

Run with the SYSTEM python3 and its python3-gi (``/usr/bin/python3 tests/_rtsp_server.py PORT``),
not the project's virtualenv: Debian's gir1.2-gst-rtsp-server-1.0 is what provides it. Serves a
live test pattern, H.264 at 30 fps, at ``rtsp://127.0.0.1:PORT/stream`` and prints
``ready PORT`` on standard output once it listens (``missing: WHAT`` and exit 3 when a part of
GStreamer is not installed). Runs until killed.
"""

import sys

PIPELINE = ("( videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120,framerate=30/1 ! "
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! "
            "rtph264pay name=pay0 pt=96 config-interval=1 )")


def main() -> int:
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GLib, Gst, GstRtspServer
    except (ImportError, ValueError) as err:
        print(f"missing: python3-gi / gir1.2-gst-rtsp-server-1.0 ({err})", flush=True)
        return 3
    Gst.init(None)
    for element in ("videotestsrc", "x264enc", "rtph264pay"):
        if Gst.ElementFactory.find(element) is None:
            print(f"missing: GStreamer element {element} (gstreamer1.0-plugins-base/-ugly/-good)", flush=True)
            return 3
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(sys.argv[1] if len(sys.argv) > 1 else "0")
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/stream", factory)
    if server.attach(None) == 0:
        print(f"missing: cannot listen on port {sys.argv[1:]}", flush=True)
        return 3
    print(f"ready {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
