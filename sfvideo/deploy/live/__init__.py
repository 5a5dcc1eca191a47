"""Action recognition on live video: cameras, RTSP/HTTP/TCP/UDP streams and files, as they play.

``run_stream(source, runner, StreamOptions(...))`` is what ``sfvideo stream`` runs. By job:

* ``source``: open a source with PyAV (network options, time-outs), decode it with stream times,
  reopen it with back-off when it is lost, skip and count corrupt packets;
* ``reader``: the thread turning decoded frames into crop-sized uint8 images for the windows;
* ``windows``: windows in stream time and the ring holding only the frames they still need
  (the newest complete window runs next; older ones are skipped and counted, never queued);
* ``smoothing``: the moving average of the probabilities and the action events;
* ``outputs``: JSON lines, the status line, bounded statistics;
* ``video_out``: ``--out-video``, the stream re-encoded with the label and the token RoIs;
* ``session``: the run itself and its summary.

Memory is a window and a stride of crop-sized frames, a bounded queue of frames for the output
video and fixed-size statistics, whatever the stream's length.
"""

from .session import StreamOptions, run_stream, summary
from .source import SourceLost, SourceOptions, source_kind

__all__ = ["StreamOptions", "SourceOptions", "SourceLost", "run_stream", "source_kind", "summary"]
