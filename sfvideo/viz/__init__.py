"""Pictures: token RoIs and sampling points over video frames (``rois``), training curves (``curves``)."""
