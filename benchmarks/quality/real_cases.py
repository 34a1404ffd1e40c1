"""The quality benchmark's real-data suite (issue 13, point 4), all offline:
real signals, no added noise, each with its feature graph.

``real_cases()`` returns the list of :class:`RealCase`; another script can
import it (``sys.path`` must hold ``benchmarks/quality``)::

    from real_cases import real_cases
    for case in real_cases(quick=True):
        print(case.name, case.X.shape)

Every case's ``X`` is (n_samples, n_features) float64 holding the data's own
values (integer images stay integer-valued, so their ties are kept). The
graph is ``A``, a symmetric scipy CSR adjacency (for scikit-learn's Ward and,
as ``connectivity=``, for fastrena on surfaces); grid cases also carry the
boolean ``mask`` (fastrena's ``mask_img``, grid downsampling, nilearn's
ReNA), in-mask features in C order, 4-connectivity in 2-D and 6 in 3-D.

Cases (N features x S samples):

* images, scikit-image: ``camera``, ``coins``, ``page``, ``cell``,
  ``microaneurysms``: grayscale uint8, nearest-neighbour downsampled by
  taking every k-th pixel in both directions, k = ceil(longer side / 128),
  one sample each.
* ``lfw_subset`` (scikit-image): its 200 25 x 25 images (scikit-image's
  subset is 100 faces and 100 non-face patches) as 200 samples of 625
  pixels, values as stored (float64 in [0, 1], not quantized).
* ``digits`` (scikit-learn): 1,797 samples x 64 pixels (8 x 8, integers
  0-16).
* ``MNI T1 r mm`` / ``MNI GM r mm``, r = 2, 3: nilearn's MNI152 T1 template
  and grey-matter probability map as its loaders give them at that
  resolution (``load_mni152_template(resolution=r)``,
  ``load_mni152_gm_template(resolution=r)``), inside
  ``load_mni152_brain_mask(resolution=r)``; one sample each. The T1 rows
  also run at K/N = 0.01.
* ``motor map``: nilearn's bundled motor activation map
  (``load_sample_motor_activation_image()``) on its own 3 mm grid (53 x 63 x
  46), in its nonzero voxels (45,448; no resampling, so no invented values);
  one sample.
* ``fsaverage5 sulcal`` / ``curvature`` / ``thickness``:
  ``load_fsaverage_data(mesh="fsaverage5", mesh_type="pial", data_type=...)``,
  both hemispheres (20,484 vertices, left then right), triangle-side graph
  (the hemispheres are not connected); one sample each.
* stress cases (their own table): ``ramp``: x + y + z on a 40^3 grid
  (integers 0-117, one sample); ``quantized``: 3 fields of white noise
  (``numpy.random.default_rng(0)``, drawn one grid after the other)
  smoothed by ``scipy.ndimage.gaussian_filter(sigma=3, mode="wrap")`` on a
  40^3 grid (periodic: no corner where reflected noise piles up), each
  scaled to unit standard deviation and quantized as ``np.round(2 * f)``:
  integers, steps of half a standard deviation, 14-16 levels per field
  between -8 and 7; 3 samples. K = N / 50 for both.
* tissue cases (group ``"tissue"``, their own table; large flat regions and
  hubs, where a greedy Ward can collapse), one sample each, K/N = 0.02 and
  0.05, not in ``quick``; ``tissue_cases()`` / ``iter_tissue_cases()``
  build only them:

  * ``MNI WM r mm`` / ``MNI GM r mm`` / ``MNI CSF r mm``, r = 3, 2, 1:
    ``load_mni152_wm_template(resolution=r)``,
    ``load_mni152_gm_template(resolution=r)`` and, for CSF,
    ``clip(1 - GM - WM, 0, None)`` on the same grid, inside
    ``load_mni152_brain_mask(resolution=r)`` (69,765 / 235,375 / 1,882,989
    voxels; the 1 mm maps are stored as 256 levels, their plateaus at 0 and
    1 are the flat regions). ``MNI GM 3 mm`` and ``2 mm`` are the brain
    rows' data again (same Ward cache entries).
  * ``motor map thresholded``: the ``motor map`` (same voxels, its nonzero
    ones) with |z| < 3 set to 0 (41,624 of its 45,448 voxels).
  * ``brain mask r mm``, r = 3, 2: ``load_mni152_brain_mask(resolution=r)``
    as a 0/1 float image over its bounding box (the box of its nonzero
    voxels, every voxel of the box a feature: 48 x 61 x 52 = 152,256 and
    73 x 90 x 78 = 512,460), two values only.

  Ward's labels for N > 150,000 come from the exact reference
  ``exact_ward.py`` (see ``real_suite.WardCache``).
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.image import grid_to_graph
from cases import mesh_adjacency

#: K/N of the real-data cases (the MNI T1 rows add 0.01); stress cases: 0.02
FRACTIONS = (0.02, 0.05)
T1_FRACTIONS = (0.01, 0.02, 0.05)
STRESS_FRACTIONS = (0.02,)
TISSUE_FRACTIONS = (0.02, 0.05)
#: tissue maps' resolutions (mm) and the brain mask's (its bounding box)
TISSUE_RESOLUTIONS = (3, 2, 1)
MASK_RESOLUTIONS = (3, 2)
#: the thresholded motor map: |z| below this is set to 0
MOTOR_THRESHOLD = 3.0
MAX_SIDE = 128
IMAGES = ("camera", "coins", "page", "cell", "microaneurysms")


@dataclass
class RealCase:
    name: str
    X: np.ndarray                 # (n_samples, n_features) float64, the data itself
    A: sparse.csr_matrix          # symmetric adjacency over the features
    group: str                    # "image", "brain", "surface", "stress", "tissue"
    fractions: tuple = FRACTIONS
    mask: np.ndarray = None       # grid cases: boolean mask, features in C order
    source: str = ""              # how it was built, for the report
    extra: dict = field(default_factory=dict)

    # the simulation suite's peers (peers.py) fit on ``noisy`` and score
    # against ``clean``: here both are the data itself
    @property
    def noisy(self):
        return self.X

    @property
    def clean(self):
        return self.X

    @property
    def mask_img(self):
        return None               # nilearn's ReNA: see real_suite.nilearn_labels

    @property
    def stress(self):
        return self.group == "stress"


def grid_adjacency(mask):
    """4- (2-D) or 6-connectivity (3-D) over the in-mask pixels, C order."""
    shape = mask.shape + (1,) * (3 - mask.ndim)
    A = sparse.csr_matrix(grid_to_graph(*shape, mask=mask.reshape(shape)), dtype=np.float64)
    A.setdiag(0)                  # grid_to_graph puts the mask on the diagonal
    A.eliminate_zeros()
    A.sort_indices()
    return A


def _grid_case(name, values, mask, group, source, fractions=FRACTIONS):
    """``values``: (n_samples,) + mask.shape."""
    values = np.asarray(values)
    X = np.ascontiguousarray(values[:, mask], dtype=np.float64)
    return RealCase(name, X, grid_adjacency(mask), group, tuple(fractions), mask, source)


def image(name):
    from skimage import data

    img = getattr(data, name)()
    if img.ndim != 2:
        raise ValueError(f"{name}: expected a grayscale image, got shape {img.shape}")
    step = -(-max(img.shape) // MAX_SIDE)
    small = img[::step, ::step]
    mask = np.ones(small.shape, dtype=bool)
    return _grid_case(name, small[None], mask, "image",
                      f"{img.shape[0]}x{img.shape[1]} {img.dtype}, every pixel in {step} "
                      f"-> {small.shape[0]}x{small.shape[1]}")


def lfw_subset():
    from skimage import data

    faces = data.lfw_subset()
    mask = np.ones(faces.shape[1:], dtype=bool)
    return _grid_case("lfw_subset", faces, mask, "image",
                      f"{faces.shape[0]} images of {faces.shape[1]}x{faces.shape[2]} "
                      "(100 faces, 100 non-faces), float in [0, 1]")


def digits():
    from sklearn.datasets import load_digits

    X = load_digits().data.reshape(-1, 8, 8)
    return _grid_case("digits", X, np.ones((8, 8), dtype=bool), "image",
                      "1797 images of 8x8, integers 0-16")


def mni(kind, resolution, group="brain"):
    """``kind``: "T1", "GM", "WM" or "CSF" (``clip(1 - GM - WM, 0, None)``)."""
    from nilearn import datasets

    loaders = {"T1": datasets.load_mni152_template, "GM": datasets.load_mni152_gm_template,
               "WM": datasets.load_mni152_wm_template}
    parts = ("GM", "WM") if kind == "CSF" else (kind,)
    mask_img = datasets.load_mni152_brain_mask(resolution=resolution)
    images = {}
    for part in parts:
        img = loaders[part](resolution=resolution)
        if not np.allclose(img.affine, mask_img.affine) or img.shape != mask_img.shape:
            raise ValueError(f"MNI {part} {resolution} mm: template and mask grids differ")
        images[part] = img.get_fdata(dtype=np.float64)
    mask = np.asarray(mask_img.dataobj) != 0
    if kind == "CSF":
        values = np.clip(1.0 - images["GM"] - images["WM"], 0.0, None)
        made = (f"clip(1 - GM - WM, 0, None) of load_mni152_gm/wm_template"
                f"(resolution={resolution})")
    else:
        values = images[kind]
        made = f"{loaders[kind].__name__}(resolution={resolution})"
    n_levels = np.unique(values[mask]).shape[0]
    fractions = T1_FRACTIONS if kind == "T1" else (
        TISSUE_FRACTIONS if group == "tissue" else FRACTIONS)
    return _grid_case(f"MNI {kind} {resolution} mm", values[None], mask, group,
                      f"{made} in the brain mask, {n_levels} distinct values", fractions)


def _motor_image():
    from nilearn.datasets import load_sample_motor_activation_image
    from nilearn.image import load_img

    img = load_img(load_sample_motor_activation_image())
    values = img.get_fdata(dtype=np.float64)
    return img, values, np.isfinite(values) & (values != 0)


def motor_map():
    img, values, mask = _motor_image()
    return _grid_case("motor map", values[None], mask, "brain",
                      f"own {values.shape[0]}x{values.shape[1]}x{values.shape[2]} grid "
                      f"({abs(img.affine[0, 0]):g} mm), nonzero voxels")


def motor_map_thresholded(threshold=MOTOR_THRESHOLD):
    """The motor map's voxels (its nonzero ones), |z| < threshold set to 0."""
    img, values, mask = _motor_image()
    cut = np.where(np.abs(values) < threshold, 0.0, values)
    return _grid_case("motor map thresholded", cut[None], mask, "tissue",
                      f"motor map (own {abs(img.affine[0, 0]):g} mm grid, its nonzero voxels) "
                      f"with |z| < {threshold:g} set to 0 ({int(np.sum(cut[mask] == 0)):,} "
                      f"voxels at 0)", TISSUE_FRACTIONS)


def brain_mask(resolution):
    """The MNI152 brain mask as a 0/1 image over its bounding box."""
    from nilearn.datasets import load_mni152_brain_mask

    brain = np.asarray(load_mni152_brain_mask(resolution=resolution).dataobj) != 0
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(brain))
    inside = brain[box].astype(np.float64)
    grid = np.ones(inside.shape, dtype=bool)
    return _grid_case(f"brain mask {resolution} mm", inside[None], grid, "tissue",
                      f"load_mni152_brain_mask(resolution={resolution}) as 0/1 over its "
                      f"bounding box {'x'.join(map(str, inside.shape))} "
                      f"({int(inside.sum()):,} ones)", TISSUE_FRACTIONS)


def fsaverage5(data_type):
    from nilearn.datasets import load_fsaverage_data

    surf = load_fsaverage_data(mesh="fsaverage5", mesh_type="pial", data_type=data_type)
    faces, values, offset = [], [], 0
    for hemi in ("left", "right"):
        faces.append(np.asarray(surf.mesh.parts[hemi].faces) + offset)
        offset += np.asarray(surf.mesh.parts[hemi].coordinates).shape[0]
        values.append(np.asarray(surf.data.parts[hemi], dtype=np.float64).ravel())
    X = np.concatenate(values)[None]
    return RealCase(f"fsaverage5 {data_type}", X, mesh_adjacency(np.concatenate(faces), offset),
                    "surface", FRACTIONS, None,
                    "pial mesh, both hemispheres, triangle sides")


def ramp(side=40):
    x, y, z = np.indices((side,) * 3)
    mask = np.ones((side,) * 3, dtype=bool)
    return _grid_case("ramp", (x + y + z)[None], mask, "stress",
                      f"x + y + z on {side}^3 (integers 0-{3 * side - 3})", STRESS_FRACTIONS)


def quantized(side=40, n_samples=3, sigma=3.0, seed=0):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    fields = []
    for _ in range(n_samples):
        f = gaussian_filter(rng.standard_normal((side,) * 3), sigma, mode="wrap")
        fields.append(np.round(2 * f / f.std()))
    fields = np.asarray(fields)
    mask = np.ones((side,) * 3, dtype=bool)
    return _grid_case("quantized", fields, mask, "stress",
                      f"{n_samples} smooth fields (sigma {sigma:g}, periodic) on {side}^3, "
                      f"round(2 f / std(f)): {np.unique(fields).shape[0]} levels "
                      f"{fields.min():g} to {fields.max():g}", STRESS_FRACTIONS)


def _tissue_makers():
    """3 mm and the motor map first, then 2 mm, then 1 mm (growing cost)."""
    makers = []
    for r in TISSUE_RESOLUTIONS:
        makers += [lambda k=k, r=r: mni(k, r, group="tissue") for k in ("WM", "GM", "CSF")]
        if r == 3:
            makers.append(motor_map_thresholded)
        if r in MASK_RESOLUTIONS:
            makers.append(lambda r=r: brain_mask(r))
    return makers


def _makers(quick):
    makers = [lambda n=n: image(n) for n in IMAGES] + [lfw_subset, digits]
    if not quick:
        makers += [lambda k=k, r=r: mni(k, r) for k in ("T1", "GM") for r in (3, 2)]
        makers += [motor_map] + [lambda t=t: fsaverage5(t)
                                 for t in ("sulcal", "curvature", "thickness")]
    makers += [ramp, quantized]
    if not quick:
        makers += _tissue_makers()
    return makers


def real_cases(quick=False):
    """Every case of the suite, built now (a few seconds, ~1 min with the
    1 mm tissue maps; MNI and fsaverage come from nilearn's bundled files).
    ``quick``: images, lfw_subset, digits and the two stress cases only."""
    return [make() for make in _makers(quick)]


def iter_real_cases(quick=False):
    """The same cases, built one at a time (to keep one in memory)."""
    for make in _makers(quick):
        yield make()


def tissue_cases():
    """The tissue group only, built now."""
    return [make() for make in _tissue_makers()]


def iter_tissue_cases():
    """The tissue group only, built one at a time."""
    for make in _tissue_makers():
        yield make()
