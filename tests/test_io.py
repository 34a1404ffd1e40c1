"""fastrena.io: NIfTI/GIfTI images <-> arrays, label images, safe writes."""

import gzip
import os
import subprocess
import sys
import warnings

import nibabel
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from helpers import (AFFINE, box_mask, grid_mesh, masked_volumes, write_gifti_data,
                     write_gifti_mesh, write_nifti)

from fastrena import ReNA
from fastrena import io as fio
from fastrena import layouts
from fastrena.io import InputError


@pytest.fixture
def volume_files(tmp_path):
    """A mask, a 4-D .nii.gz of 5 volumes and a 3-D .nii, on one grid."""
    mask = box_mask()
    data = masked_volumes(mask, 6)
    return {
        "mask": mask,
        "data": data,
        "mask_path": write_nifti(tmp_path / "mask.nii.gz", mask.astype(np.uint8)),
        "run1": write_nifti(tmp_path / "run1.nii.gz", data[..., :5]),
        "run2": write_nifti(tmp_path / "run2.nii", data[..., 5]),
    }


def expected_rows(volume_files):
    """The in-mask values of run1 then run2, one row per volume, by numpy alone."""
    data, mask = volume_files["data"], volume_files["mask"]
    return np.stack([data[..., t][mask] for t in range(6)])


def no_stray_files(folder, expected):
    assert sorted(p.name for p in folder.iterdir()) == sorted(expected)


# --------------------------------------------------------------------------
# images -> arrays
# --------------------------------------------------------------------------
def test_images_to_array_reads_paths_in_mask_c_order(volume_files):
    X = fio.images_to_array([volume_files["run1"], volume_files["run2"]],
                            volume_files["mask_path"])
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X, expected_rows(volume_files))


@pytest.mark.filterwarnings("ignore:boolean values for 'standardize':FutureWarning")
def test_images_to_array_matches_nilearn_masker(volume_files):
    from nilearn.maskers import NiftiMasker

    imgs = [str(volume_files["run1"]), str(volume_files["run2"])]
    masker = NiftiMasker(str(volume_files["mask_path"])).fit()
    reference = np.vstack([masker.transform(img) for img in imgs])
    np.testing.assert_array_equal(fio.images_to_array(imgs, volume_files["mask_path"]),
                                  reference.astype(np.float32))
    # The masker itself, as ReNA(mask_img=masker) takes it: its mask.
    np.testing.assert_array_equal(fio.images_to_array(imgs, masker),
                                  reference.astype(np.float32))
    # An unfitted masker without a mask: said so, without the estimator's
    # words on clone.
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match=r"^mask_img is a NiftiMasker that has not been "
                                             r"fitted and has no mask_img of its own; fit it "
                                             r"first \(its mask_img_ is used\), or give it a "
                                             r"mask_img$"):
        fio.images_to_array(imgs, NiftiMasker())


def test_images_to_array_takes_nibabel_images_and_float64(volume_files):
    imgs = [nibabel.load(volume_files["run1"]),
            nibabel.Nifti1Image(volume_files["data"][..., 5], AFFINE)]
    X = fio.images_to_array(imgs, nibabel.load(volume_files["mask_path"]), dtype=np.float64)
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, expected_rows(volume_files))


def test_images_to_array_reads_4d_files_in_blocks(volume_files, monkeypatch):
    # One volume of this grid is 8*9*7*8 bytes in float64: 2 volumes a block.
    monkeypatch.setattr(layouts, "BLOCK_BYTES", 8 * 9 * 7 * 8 * 2)
    X = fio.images_to_array([volume_files["run1"], volume_files["run2"]],
                            volume_files["mask_path"])
    np.testing.assert_array_equal(X, expected_rows(volume_files))


def test_images_to_array_rejects_bad_dtype(volume_files):
    with pytest.raises(InputError, match="^dtype must be float32 or float64, got int32$"):
        fio.images_to_array(volume_files["run1"], volume_files["mask_path"], dtype=np.int32)


def test_images_to_array_rejects_empty_list(volume_files):
    with pytest.raises(InputError, match="^imgs is empty: give at least one image$"):
        fio.images_to_array([], volume_files["mask_path"])


# --------------------------------------------------------------------------
# bad image inputs
# --------------------------------------------------------------------------
def test_missing_image(volume_files, tmp_path):
    missing = tmp_path / "nope.nii.gz"
    with pytest.raises(FileNotFoundError, match=f"^image: no such file: '{missing}'$"):
        fio.images_to_array(missing, volume_files["mask_path"])


def test_folder_as_image(volume_files, tmp_path):
    with pytest.raises(InputError, match=f"^image: '{tmp_path}' is a folder, not an image file$"):
        fio.images_to_array(tmp_path, volume_files["mask_path"])


def test_not_a_nifti(volume_files, tmp_path):
    path = tmp_path / "notes.nii.gz"
    path.write_text("not an image")
    with pytest.raises(InputError, match=f"^image: '{path}' is not a NIfTI or GIfTI image "
                                         r"\(.+\)$"):
        fio.images_to_array(path, volume_files["mask_path"])


def test_truncated_nifti_data(volume_files, tmp_path):
    raw = gzip.decompress(volume_files["run1"].read_bytes())
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(gzip.compress(raw[:len(raw) // 2]))
    with pytest.raises(InputError, match=f"^image '{path}': its data cannot be read "):
        fio.images_to_array(path, volume_files["mask_path"])


def test_2d_image_where_3d_or_4d_expected(volume_files, tmp_path):
    path = write_nifti(tmp_path / "slice.nii.gz", volume_files["data"][:, :, 0, 0])
    with pytest.raises(InputError, match=f"^image '{path}' must be a 3-D or 4-D image, "
                                         r"got shape \(8, 9\)$"):
        fio.images_to_array(path, volume_files["mask_path"])


def test_image_and_mask_shapes_differ(volume_files, tmp_path):
    path = write_nifti(tmp_path / "small.nii.gz", np.zeros((8, 9, 6), np.float32))
    with pytest.raises(InputError, match=rf"^image '{path}' has shape \(8, 9, 6\) but the "
                                         r"mask has shape \(8, 9, 7\); they must be on the "
                                         "same grid$"):
        fio.images_to_array(path, volume_files["mask_path"])


def test_image_and_mask_affines_differ(volume_files, tmp_path):
    shifted = AFFINE.copy()
    shifted[0, 3] += 1.5
    path = write_nifti(tmp_path / "shifted.nii.gz", volume_files["data"], affine=shifted)
    with pytest.raises(InputError, match=f"^image '{path}' has an affine that differs from "
                                         r"the mask's \(by up to 1.5 mm\); they must be on "
                                         "the same grid$"):
        fio.images_to_array(path, volume_files["mask_path"])


def test_nan_inside_the_mask(volume_files, tmp_path):
    data = volume_files["data"][..., :3].copy()
    data[4, 4, 3, 2] = np.nan
    data[4, 5, 3, 2] = np.inf
    path = write_nifti(tmp_path / "nan.nii.gz", data)
    with pytest.raises(InputError, match=f"^image '{path}' has NaN or infinite values inside "
                                         r"the mask \(volume 2, at 2 voxels\): give a mask that "
                                         r"leaves them out, or none \(a mask computed from the "
                                         r"images leaves out every voxel that is not finite\)$"):
        fio.images_to_array(path, volume_files["mask_path"])


def test_in_memory_images_are_named_by_position(volume_files):
    img = nibabel.Nifti1Image(np.zeros((3, 3), np.float32), AFFINE)
    with pytest.raises(InputError, match=r"^image 1 must be a 3-D or 4-D image, got shape "
                                         r"\(3, 3\)$"):
        fio.images_to_array([volume_files["run1"], img], volume_files["mask_path"])


def test_gifti_where_a_volume_is_expected(volume_files, tmp_path):
    path = write_gifti_data(tmp_path / "lh.func.gii", np.zeros(5))
    with pytest.raises(InputError, match=f"^image '{path}' is a GIfTI surface file where a "
                                         "NIfTI volume is expected$"):
        fio.images_to_array(path, volume_files["mask_path"])


def test_mask_errors(tmp_path):
    empty = write_nifti(tmp_path / "empty.nii.gz", np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(InputError, match=f"^mask_img '{empty}' has no in-mask voxel "
                                         r"\(shape \(4, 4, 4\), all zero\)$"):
        fio.mask_layout(empty)
    flat = write_nifti(tmp_path / "flat.nii.gz", np.ones((4, 4), np.uint8))
    with pytest.raises(InputError, match=f"^mask '{flat}' must be a 3-D image, got shape "
                                         r"\(4, 4\)$"):
        fio.mask_layout(flat, "mask")


def test_inputs_are_not_modified(volume_files):
    paths = [volume_files["run1"], volume_files["run2"], volume_files["mask_path"]]
    before = [(p.read_bytes(), os.stat(p).st_mtime_ns) for p in paths]
    rena = fio.fit_images(paths[:2], paths[2], n_clusters=5)
    fio.transform_images(rena, paths[:2])
    assert [(p.read_bytes(), os.stat(p).st_mtime_ns) for p in paths] == before


# --------------------------------------------------------------------------
# computed masks
# --------------------------------------------------------------------------
def test_compute_mask_keeps_voxels_that_differ_from_the_border(tmp_path):
    data = np.zeros((7, 7, 7, 2), np.float32)
    data[2:5, 2:5, 2:5, 0] = 1.0
    data[3, 3, 5, 1] = -2.0  # in the mask through the second volume only
    path = write_nifti(tmp_path / "a.nii.gz", data)
    mask = fio.compute_mask(path)
    expected = data.any(axis=-1)
    np.testing.assert_array_equal(np.asarray(mask.dataobj), expected.astype(np.uint8))
    np.testing.assert_array_equal(mask.affine, AFFINE)


def test_compute_mask_background_is_the_border_median_and_skips_nonfinite(tmp_path):
    data = np.full((7, 7, 7), 100.0, np.float32)
    data[2:5, 2:5, 2:5] = 3.0
    data[3, 3, 3] = np.inf
    other = np.full((7, 7, 7), 100.0, np.float32)
    other[1, 1, 1] = 7.0
    # The voxel left out is said (it was silent).
    with pytest.warns(UserWarning, match=r"^1 voxel of the images holds NaN or infinite values "
                                         r"in some volume: left out of the computed mask$"):
        mask = fio.compute_mask([write_nifti(tmp_path / "a.nii", data),
                                 write_nifti(tmp_path / "b.nii", other)])
    expected = (data != 100) | (other != 100)
    expected[3, 3, 3] = False
    np.testing.assert_array_equal(np.asarray(mask.dataobj) != 0, expected)


def test_compute_mask_with_nan_background(tmp_path):
    data = np.full((6, 6, 6), np.nan, np.float32)
    data[2:4, 2:4, 2:4] = 0.0  # zero but finite: brain
    with warnings.catch_warnings():
        # NaN is the background here: nothing left out to say.
        warnings.simplefilter("error")
        mask = fio.compute_mask(write_nifti(tmp_path / "a.nii", data))
    np.testing.assert_array_equal(np.asarray(mask.dataobj) != 0, np.isfinite(data))


def test_compute_mask_of_constant_images(tmp_path):
    path = write_nifti(tmp_path / "a.nii", np.full((5, 5, 5), 2.5, np.float32))
    with pytest.raises(InputError, match=r"^no voxel of the images differs from their "
                                         r"background value \(2.5\) while being finite; "
                                         "give a mask$"):
        fio.compute_mask(path)


# --------------------------------------------------------------------------
# fitting from images, label images, transforms
# --------------------------------------------------------------------------
def test_fit_images_equals_fit_on_the_array(volume_files):
    imgs = [volume_files["run1"], volume_files["run2"]]
    rena = fio.fit_images(imgs, volume_files["mask_path"], n_clusters=12, n_iter=20)
    reference = ReNA(str(volume_files["mask_path"]), n_clusters=12, n_iter=20).fit(
        expected_rows(volume_files))
    np.testing.assert_array_equal(rena.labels_, reference.labels_)
    assert rena.n_clusters_ == 12
    assert isinstance(rena.mask_img_, nibabel.Nifti1Image)
    # The layout is the estimator's mask_img, kept as layout_ (no image
    # made and parsed again), and the reference's layout has the same graph.
    assert isinstance(rena.mask_img, layouts.VolumeLayout)
    assert rena.layout_ is rena.mask_img
    for name in ("u", "v"):
        np.testing.assert_array_equal(getattr(rena.layout_.graph, name),
                                      getattr(reference.layout_.graph, name))
    np.testing.assert_array_equal(np.asarray(rena.mask_img_.dataobj) != 0,
                                  np.asarray(reference.mask_img_.dataobj) != 0)


def test_an_estimator_without_an_image_grid_says_so():
    X = np.random.default_rng(0).standard_normal((3, 12))
    rena = ReNA(n_clusters=4).fit(X)
    assert isinstance(rena.layout_, layouts.GraphLayout) and rena.mask_img_ is None
    with pytest.raises(InputError, match="^this ReNA was fitted without mask_img"):
        fio.labels_to_img(rena)
    flat = ReNA(np.ones((3, 4), bool), n_clusters=4).fit(X)
    with pytest.raises(InputError, match="^this ReNA was fitted on a 2-D mask; images "
                                         "need a 3-D mask$"):
        fio.labels_to_img(flat)


def test_fit_images_computes_the_mask_when_none_is_given(volume_files):
    imgs = [volume_files["run1"], volume_files["run2"]]
    rena = fio.fit_images(imgs, n_clusters=12)
    np.testing.assert_array_equal(np.asarray(rena.mask_img_.dataobj) != 0, volume_files["mask"])
    assert rena.labels_.shape == (int(volume_files["mask"].sum()),)


def test_library_is_silent_unless_verbose(volume_files, capsys):
    imgs = [volume_files["run1"], volume_files["run2"]]
    rena = fio.fit_images(imgs, n_clusters=12)
    fio.transform_images(rena, imgs)
    assert capsys.readouterr() == ("", "")
    fio.fit_images(imgs, n_clusters=12, verbose=1)
    fio.transform_images(rena, imgs, verbose=1)
    out, err = capsys.readouterr()
    assert out == ""
    for bar in ("computing mask", "reading images", "fit", "transforming"):
        assert f"{bar}: " in err


def test_fit_progress_bar_counts_merges_to_k(volume_files, capsys):
    fio.fit_images(volume_files["run1"], volume_files["mask_path"], n_clusters=10, verbose=1)
    err = capsys.readouterr().err
    n = int(volume_files["mask"].sum())
    assert f"{n - 10}/{n - 10}" in err  # the bar ends full
    assert "10 clusters]" in err


def test_labels_to_img(volume_files):
    rena = fio.fit_images(volume_files["run1"], volume_files["mask_path"], n_clusters=7)
    img = fio.labels_to_img(rena)
    data = np.asarray(img.dataobj)
    assert data.dtype == np.int32
    assert img.header.get_intent()[0] == "label"
    np.testing.assert_array_equal(img.affine, AFFINE)
    np.testing.assert_array_equal(data[~volume_files["mask"]], 0)
    np.testing.assert_array_equal(data[volume_files["mask"]], rena.labels_ + 1)


def test_labels_to_img_needs_a_mask():
    rena = ReNA(n_clusters=2).fit(np.arange(8.0).reshape(2, 4))
    with pytest.raises(InputError, match=r"^this ReNA was fitted without mask_img \(on a "
                                         r"connectivity graph or a 1-D chain\): it has no "
                                         "image grid to write to$"):
        fio.labels_to_img(rena)
    # scikit-learn's NotFittedError, as ReNA.transform raises.
    with pytest.raises(NotFittedError, match="^this ReNA is not fitted; fit it first$"):
        fio.labels_to_img(ReNA())


def test_labels_to_img_of_an_array_mask_uses_voxel_coordinates():
    mask = box_mask((5, 5, 5))
    rena = ReNA(mask, n_clusters=3).fit(np.random.default_rng(0).random((2, int(mask.sum()))))
    img = fio.labels_to_img(rena)
    np.testing.assert_array_equal(img.affine, np.eye(4))
    np.testing.assert_array_equal(np.asarray(img.dataobj)[mask], rena.labels_ + 1)


@pytest.mark.parametrize("scaling", [False, True])
def test_transform_images_equals_transform(volume_files, scaling):
    imgs = [volume_files["run1"], volume_files["run2"]]
    rena = fio.fit_images(imgs, volume_files["mask_path"], n_clusters=9, scaling=scaling)
    np.testing.assert_array_equal(fio.transform_images(rena, imgs),
                                  rena.transform(expected_rows(volume_files)))


def test_inverse_transform_img(volume_files):
    rena = fio.fit_images(volume_files["run1"], volume_files["mask_path"], n_clusters=9)
    X_red = fio.transform_images(rena, volume_files["run1"])
    img = fio.inverse_transform_img(rena, X_red)
    data = np.asarray(img.dataobj)
    assert data.shape == (8, 9, 7, 5) and data.dtype == np.float32
    np.testing.assert_array_equal(data[volume_files["mask"]].T, rena.inverse_transform(X_red))
    np.testing.assert_array_equal(data[~volume_files["mask"]], 0)
    single = fio.inverse_transform_img(rena, X_red[0])
    assert single.shape == (8, 9, 7)
    np.testing.assert_array_equal(np.asarray(single.dataobj), data[..., 0])


# --------------------------------------------------------------------------
# surfaces (nilearn SurfaceImage in Python)
# --------------------------------------------------------------------------
@pytest.fixture
def surface_images():
    from nilearn.surface import InMemoryMesh, PolyMesh, SurfaceImage

    left, right = grid_mesh(4, 5, x=-10.0), grid_mesh(3, 4, x=10.0)
    mesh = PolyMesh(left=InMemoryMesh(*left), right=InMemoryMesh(*right))
    rng = np.random.default_rng(3)
    data = {"left": rng.standard_normal((20, 3)), "right": rng.standard_normal((12, 3))}
    mask = SurfaceImage(mesh=mesh, data={"left": np.arange(20) % 7 != 0,
                                         "right": np.ones(12, dtype=bool)})
    return SurfaceImage(mesh=mesh, data=data), mask, data


def test_fit_images_on_surface_images(surface_images):
    img, mask, data = surface_images
    rena = fio.fit_images([img], mask, n_clusters=6)
    left_in = np.arange(20) % 7 != 0
    X = np.hstack([data["left"][left_in].T, data["right"].T]).astype(np.float32)
    reference = ReNA(mask, n_clusters=6).fit(X)
    np.testing.assert_array_equal(rena.labels_, reference.labels_)
    labels = fio.labels_to_img(rena)
    np.testing.assert_array_equal(labels.data.parts["left"][~left_in], 0)
    np.testing.assert_array_equal(
        np.concatenate([labels.data.parts["left"][left_in], labels.data.parts["right"]]),
        rena.labels_ + 1)
    np.testing.assert_array_equal(fio.transform_images(rena, img), rena.transform(X))
    back = fio.inverse_transform_img(rena, rena.transform(X))
    np.testing.assert_array_equal(back.data.parts["right"].T,
                                  rena.inverse_transform(rena.transform(X))[:, -12:])


def test_fit_images_on_surface_images_without_mask_uses_every_vertex(surface_images):
    img, _, _ = surface_images
    rena = fio.fit_images(img, n_clusters=4)
    assert rena.labels_.shape == (32,)
    gifti = fio.labels_to_gifti(rena)
    assert [g.darrays[0].data.shape for g in gifti] == [(20,), (12,)]
    np.testing.assert_array_equal(np.concatenate([g.darrays[0].data for g in gifti]),
                                  rena.labels_ + 1)


def test_labels_to_gifti_of_a_volume_fit(volume_files):
    rena = fio.fit_images(volume_files["run1"], volume_files["mask_path"], n_clusters=3)
    with pytest.raises(InputError, match="^this ReNA was fitted on a volume mask; use "
                                         "labels_to_img$"):
        fio.labels_to_gifti(rena)


# --------------------------------------------------------------------------
# GIfTI files (the command line's surfaces)
# --------------------------------------------------------------------------
def test_load_mesh_and_surface_data(tmp_path):
    coords, faces = grid_mesh(3, 3)
    mesh = write_gifti_mesh(tmp_path / "lh.pial.gii", coords, faces)
    got_coords, got_faces = fio.load_mesh(mesh)
    np.testing.assert_array_equal(got_coords, coords)
    np.testing.assert_array_equal(got_faces, faces)
    values = np.arange(18, dtype=np.float32).reshape(9, 2)
    data = write_gifti_data(tmp_path / "lh.func.gii", values)
    np.testing.assert_array_equal(fio.load_surface_data(data), values)
    with pytest.raises(InputError, match=f"^mesh '{data}' is not a GIfTI mesh "):
        fio.load_mesh(data)
    with pytest.raises(InputError, match=f"^image '{mesh}' is a GIfTI mesh, not data on a "
                                         "mesh$"):
        fio.load_surface_data(mesh)


def test_surface_layout_checks_vertex_counts(tmp_path):
    mesh = write_gifti_mesh(tmp_path / "lh.pial.gii", *grid_mesh(3, 3))
    layout = fio.surface_layout([mesh])
    short = write_gifti_data(tmp_path / "short.func.gii", np.zeros(8))
    with pytest.raises(InputError, match=f"^image '{short}' has 8 vertices but the mesh has "
                                         "9$"):
        fio.read_images(layout, [(short,)])
    # A volume where surface data is asked for was counted as a GIfTI file.
    volume = write_nifti(tmp_path / "run.nii.gz", np.zeros((2, 2, 2, 3), np.float32))
    for given in (volume, nibabel.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), AFFINE)):
        with pytest.raises(InputError, match=r" is a NIfTI volume, but the mask is a surface "
                                             r"of 1 part\(s\): give one GIfTI data file per "
                                             r"part$"):
            fio.read_images(layout, [given])
    bad_mask = write_gifti_data(tmp_path / "mask.gii", np.ones(4))
    with pytest.raises(InputError, match=rf"^mask '{bad_mask}' has shape \(4, 1\); expected "
                                         "one value for each of the mesh's 9 vertices$"):
        fio.surface_layout([mesh], [bad_mask])


# --------------------------------------------------------------------------
# label files
# --------------------------------------------------------------------------
def test_load_parcellation_with_any_label_values(tmp_path):
    labels = np.zeros((3, 3, 3), np.int16)
    labels[0] = 7
    labels[1, :2] = 3
    labels[2, 2, 2] = 9
    parcellation = fio.load_parcellation(write_nifti(tmp_path / "atlas.nii.gz", labels))
    np.testing.assert_array_equal(parcellation.values, [3, 7, 9])
    np.testing.assert_array_equal(parcellation.sizes, [6, 9, 1])
    data = np.random.default_rng(1).random((3, 3, 3, 2)).astype(np.float32)
    X_red = parcellation.reduce(write_nifti(tmp_path / "d.nii.gz", data))
    expected = np.stack([[data[..., t][labels == v].mean(dtype=np.float64) for v in (3, 7, 9)]
                         for t in range(2)])
    np.testing.assert_allclose(X_red, expected, rtol=1e-6)
    np.testing.assert_array_equal(parcellation.label_values()[parcellation.labels == 2], 9)


def test_load_parcellation_errors(tmp_path):
    floats = write_nifti(tmp_path / "f.nii.gz", np.full((2, 2, 2), 1.5, np.float32))
    with pytest.raises(InputError, match=f"^labels '{floats}' is not a label image: its "
                                         r"values must be integers >= 0 \(0 = background\)$"):
        fio.load_parcellation(floats)
    zeros = write_nifti(tmp_path / "z.nii.gz", np.zeros((2, 2, 2), np.int16))
    with pytest.raises(InputError, match=f"^labels '{zeros}': no nonzero label "
                                         r"\(every value is 0\)$"):
        fio.load_parcellation(zeros)
    four = write_nifti(tmp_path / "4d.nii.gz", np.ones((2, 2, 2, 2), np.int16))
    with pytest.raises(InputError, match=f"^labels '{four}' must be a 3-D image, got shape "
                                         r"\(2, 2, 2, 2\)$"):
        fio.load_parcellation(four)
    with pytest.raises(InputError, match="^labels: give one NIfTI label image or one GIfTI "
                                         "label file per mesh part, got 2 files: "):
        fio.load_parcellation([floats, zeros])


def test_parcellation_expand_checks_the_width(tmp_path):
    labels = np.array([[[1, 2], [2, 0]]], dtype=np.int16)
    parcellation = fio.load_parcellation(write_nifti(tmp_path / "l.nii.gz", labels))
    np.testing.assert_array_equal(parcellation.expand(np.array([[5.0, 6.0]])), [[5, 6, 6]])
    np.testing.assert_allclose(parcellation.expand(np.array([5.0, 6.0]), scaling=True),
                               [5, 6 / np.sqrt(2), 6 / np.sqrt(2)])
    with pytest.raises(InputError, match=r"^the array has shape \(1, 3\) but the labels have "
                                         "2 clusters; it needs 2 columns$"):
        parcellation.expand(np.zeros((1, 3)))


# --------------------------------------------------------------------------
# safe writes
# --------------------------------------------------------------------------
def test_save_img_is_atomic_and_never_overwrites(tmp_path):
    img = nibabel.Nifti1Image(np.ones((2, 2, 2), np.int32), AFFINE)
    path = tmp_path / "labels.nii.gz"
    fio.save_img(img, path)
    first = path.read_bytes()
    with pytest.raises(FileExistsError, match=f"^output '{path}' already exists; force=True "
                                              "overwrites it$"):
        fio.save_img(nibabel.Nifti1Image(np.zeros((2, 2, 2), np.int32), AFFINE), path)
    assert path.read_bytes() == first
    fio.save_img(nibabel.Nifti1Image(np.zeros((2, 2, 2), np.int32), AFFINE), path, force=True)
    assert np.asarray(nibabel.load(path).dataobj).sum() == 0
    no_stray_files(tmp_path, ["labels.nii.gz"])


def test_write_atomically_leaves_nothing_when_the_writer_fails(tmp_path):
    def failing(temporary):
        temporary.write_bytes(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="^disk full$"):
        fio.write_atomically(tmp_path / "out.npy", failing)
    no_stray_files(tmp_path, [])


def test_written_files_get_ordinary_permissions(tmp_path):
    path = fio.save_array(np.zeros(3), tmp_path / "a.npy")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_check_output_errors(tmp_path):
    with pytest.raises(InputError, match=f"^output folder '{tmp_path / 'no'}' does not exist$"):
        fio.check_output(tmp_path / "no" / "a.nii.gz")
    afile = tmp_path / "file"
    afile.write_text("")
    with pytest.raises(InputError, match=f"^output folder '{afile}' does not exist$"):
        fio.check_output(afile / "a.nii.gz")
    with pytest.raises(InputError, match=f"^output '{tmp_path}' is a folder; give a file name$"):
        fio.check_output(tmp_path)
    with pytest.raises(InputError, match=r"^output folder '/proc' is not writable \(.+\)$"):
        fio.check_output("/proc/a.nii.gz")


def test_save_img_checks_the_file_name(tmp_path):
    img = nibabel.Nifti1Image(np.ones((2, 2, 2), np.int32), AFFINE)
    with pytest.raises(InputError, match=f"^output '{tmp_path / 'a.png'}' must end with .nii "
                                         "or .nii.gz$"):
        fio.save_img(img, tmp_path / "a.png")


def test_save_img_of_a_surface_image_says_what_to_save(tmp_path):
    # What labels_to_img returns for a ReNA fitted on a SurfaceImage mask:
    # nibabel failed on it with an AttributeError.
    from nilearn.surface import InMemoryMesh, PolyMesh, SurfaceImage

    coords, faces = grid_mesh(3, 3)
    img = SurfaceImage(PolyMesh(left=InMemoryMesh(coords, faces)), {"left": np.ones(9)})
    path = tmp_path / "labels.nii.gz"
    with pytest.raises(InputError, match=rf"^cannot save a nilearn SurfaceImage to '{path}': "
                                         r"save one GIfTI image per hemisphere \(for a surface "
                                         r"parcellation, fastrena\.io\.labels_to_gifti\(rena\)"):
        fio.save_img(img, path)
    with pytest.raises(InputError, match=r"^cannot save a list to .*: give a nibabel image"):
        fio.save_img([img], path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".tsv"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_arrays_round_trip_exactly(tmp_path, suffix, dtype):
    array = np.random.default_rng(2).standard_normal((4, 3)).astype(dtype) * 1e3
    path = fio.save_array(array, tmp_path / f"a{suffix}", columns=["x", "y", "z"])
    back = fio.load_array(path)
    np.testing.assert_array_equal(back.astype(dtype), array)
    if suffix != ".npy":
        delimiter = "," if suffix == ".csv" else "\t"
        assert path.read_text().splitlines()[0] == delimiter.join(["x", "y", "z"])


def test_load_array_without_header_and_errors(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("1,2\n3,4\n")
    np.testing.assert_array_equal(fio.load_array(path), [[1, 2], [3, 4]])
    bad = tmp_path / "b.csv"
    bad.write_text("1,2\n3,x\n")
    with pytest.raises(InputError, match=f"^array '{bad}' cannot be read as .csv "):
        fio.load_array(bad)
    with pytest.raises(InputError, match=f"^array '{tmp_path / 'a.txt'}': unknown format "
                                         "'.txt'; use .npy, .csv, .tsv$"):
        fio.load_array(tmp_path / "a.txt")
    with pytest.raises(FileNotFoundError, match=f"^array: no such file: "
                                                f"'{tmp_path / 'c.npy'}'$"):
        fio.load_array(tmp_path / "c.npy")
    cube = tmp_path / "cube.npy"
    np.save(cube, np.zeros((2, 2, 2)))
    with pytest.raises(InputError, match=f"^array '{cube}' must be a 1-D or 2-D array of "
                                         r"real numbers, got shape \(2, 2, 2\) and dtype "
                                         "float64$"):
        fio.load_array(cube)


# --------------------------------------------------------------------------
# imports
# --------------------------------------------------------------------------
def test_importing_fastrena_imports_neither_matplotlib_nor_tqdm():
    code = ("import sys, fastrena, fastrena.io, fastrena.cli, fastrena.plotting; "
            "print(sorted(m for m in ('matplotlib', 'tqdm', 'nilearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out == "[]\n"


@pytest.mark.parametrize("shape", [(4, 5, 3), (4, 5, 3, 1)])
def test_load_3d_volume_reads_the_data_now(tmp_path, shape):
    data = np.arange(60, dtype=np.float32).reshape(shape)
    write_nifti(tmp_path / "anat.nii.gz", data)
    img = fio.load_3d_volume(tmp_path / "anat.nii.gz", "bg_img")
    assert img.shape == (4, 5, 3)
    # in memory: the file can go, the data stays
    (tmp_path / "anat.nii.gz").unlink()
    np.testing.assert_array_equal(np.asarray(img.dataobj), data.reshape(4, 5, 3))
    np.testing.assert_array_equal(img.affine, AFFINE)


def test_a_volume_of_zeros_in_the_mask_is_named_as_it_is_read(tmp_path):
    # A dropped scan (0 at every in-mask voxel) read as a scan of a flat
    # brain, without a word: it made the report's homogeneity 1.
    mask = box_mask()
    mask_path = write_nifti(tmp_path / "mask.nii.gz", mask.astype(np.uint8))
    data = masked_volumes(mask, 9)
    data[..., 4] = 0
    run = write_nifti(tmp_path / "run.nii.gz", data)
    with pytest.warns(UserWarning, match=rf"^image '{run}': volume 4 is 0 at every in-mask "
                                         r"voxel \(a dropped or empty scan\?\): read as a scan "
                                         r"of zeros; leave it out if it is not a scan$"):
        X = fio.images_to_array(run, mask_path)
    assert X.shape == (9, int(mask.sum())) and not X[4].any() and X[3].all()
    data[..., [2, 7]] = 0
    run = write_nifti(tmp_path / "run2.nii.gz", data)
    with pytest.warns(UserWarning, match=r": volumes 2, 4, 7 are 0 at every in-mask voxel .*"
                                         r"read as scans of zeros; leave them out if they are "
                                         r"not scans$"):
        fio.images_to_array(run, mask_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fio.images_to_array(write_nifti(tmp_path / "run3.nii.gz", masked_volumes(mask, 3)),
                            mask_path)
