"""``sfvideo app``: a browser app (Gradio) that classifies a video and shows what the tokens look at.

:mod:`~sfvideo.app.analysis` computes (no Gradio: the top-5, the timeline, the RoIs per layer,
the checks on an upload); :mod:`~sfvideo.app.ui` builds and serves the page and its API. Gradio
comes with the ``app`` extra (``pip install "sfvideo[app]"``) and is imported only when the page is
built.
"""
