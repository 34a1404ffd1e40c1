"""What every layout is (:class:`Layout`), and how much of an image is read
at once (:data:`BLOCK_BYTES`): the ground that :mod:`fastrena.layouts`,
:mod:`fastrena.surfaces` and :mod:`fastrena.grayordinates` share."""

__all__ = ["BLOCK_BYTES", "Layout"]

#: Images are read in blocks of at most this many bytes of float64, so a
#: 4-D image or a long series never sits in memory whole.
BLOCK_BYTES = 64 * 2**20


class Layout:
    """What every layout gives: ``n_features``; ``graph`` (a
    ``FeatureGraph``); the estimator's ``mask_img_``; ``require_images()``
    (an :class:`InputError` if it cannot read or write images);
    ``n_scans(img, what)`` and ``read(img, what, start, stop)`` (blocks of
    shape (n_scans, n_features)). The estimator takes any layout as its
    ``mask_img``. Layouts are frozen: built once, never changed."""
