"""CIFTI-2 grayordinates (issue 16) on real geometry: fsaverage5's meshes as
the two hemispheres (medial vertices left out of the file, as CIFTI leaves
out the medial wall) and two subcortical structures cut from nilearn's
MNI152 2 mm brain mask; the files are written by nibabel in a temporary
folder.

Checks the graph against an independent build, that clusters never span
structures and are connected, that label, parcellated and dense files
load in nibabel with the right axes and round-trip, and every bad input.
"""

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse import csgraph

nib = pytest.importorskip("nibabel")
datasets = pytest.importorskip("nilearn.datasets")
cifti2 = nib.cifti2

from fastrena import ReNA  # noqa: E402
from fastrena._colors import cluster_colors  # noqa: E402
from fastrena.errors import InputError  # noqa: E402
from fastrena.grayordinates import grayordinate_layout  # noqa: E402

STRUCTURES = ("CIFTI_STRUCTURE_CORTEX_LEFT", "CIFTI_STRUCTURE_CORTEX_RIGHT",
              "CIFTI_STRUCTURE_THALAMUS_LEFT", "CIFTI_STRUCTURE_THALAMUS_RIGHT")


@pytest.fixture(scope="module")
def geometry():
    """(meshes [(coordinates, faces)] left and right, brain models)."""
    pial = datasets.load_fsaverage("fsaverage5")["pial"]
    meshes = [(np.asarray(pial.parts[side].coordinates), np.asarray(pial.parts[side].faces))
              for side in ("left", "right")]
    axes = []
    for (coordinates, _), name in zip(meshes, STRUCTURES[:2]):
        # The medial wall's stand-in: vertices within 6 mm of the midline.
        vertices = np.flatnonzero(np.abs(coordinates[:, 0]) > 6)
        axes.append(cifti2.BrainModelAxis.from_surface(vertices, coordinates.shape[0], name))
    brain = datasets.load_mni152_brain_mask(resolution=2)
    inside = np.asarray(brain.dataobj) != 0
    ijk = np.indices(inside.shape).reshape(3, -1).T
    xyz = nib.affines.apply_affine(brain.affine, ijk).reshape(inside.shape + (3,))
    for sign, name in ((-1, STRUCTURES[2]), (1, STRUCTURES[3])):
        box = inside & (np.abs(xyz[..., 0] - sign * 12) < 8) & (np.abs(xyz[..., 1] + 18) < 10) \
            & (np.abs(xyz[..., 2] - 6) < 8)
        axes.append(cifti2.BrainModelAxis.from_mask(box, name, brain.affine))
    models = axes[0]
    for axis in axes[1:]:
        models = models + axis
    return meshes, models


def write_dense(path, data, models, series=True):
    rows = (cifti2.SeriesAxis(start=0, step=0.72, size=data.shape[0]) if series
            else cifti2.ScalarAxis([f"map {i}" for i in range(data.shape[0])]))
    cifti2.Cifti2Image(data.astype(np.float32), header=(rows, models)).to_filename(str(path))
    return path


def independent_edges(meshes, models):
    """Edge set built another way: sets of triangle sides and of voxel pairs."""
    edges = set()
    offset = 0
    for name, part, sub in models.iter_structures():
        if sub.surface_mask.all():
            faces = meshes[STRUCTURES.index(name)][1]
            position = {int(v): offset + i for i, v in enumerate(sub.vertex)}
            for triangle in faces:
                for a, b in ((0, 1), (1, 2), (2, 0)):
                    va, vb = int(triangle[a]), int(triangle[b])
                    if va in position and vb in position:
                        edges.add((min(position[va], position[vb]),
                                   max(position[va], position[vb])))
        else:
            position = {tuple(map(int, v)): offset + i for i, v in enumerate(sub.voxel)}
            for voxel, i in position.items():
                for axis in range(3):
                    other = list(voxel)
                    other[axis] += 1
                    if tuple(other) in position:
                        edges.add((i, position[tuple(other)]))
        offset += len(sub)
    return edges


def test_the_graph_is_the_meshes_and_the_voxel_grid(geometry):
    meshes, models = geometry
    layout = grayordinate_layout(write_dense_in_memory(models), meshes)
    graph = layout.graph
    assert graph.n_nodes == len(models) == layout.n_features
    assert set(zip(graph.u.tolist(), graph.v.tolist())) == independent_edges(meshes, models)


def write_dense_in_memory(models, n_rows=3, seed=0):
    data = np.random.default_rng(seed).standard_normal((n_rows, len(models)))
    return cifti2.Cifti2Image(data.astype(np.float32),
                              header=(cifti2.SeriesAxis(0, 1, n_rows), models))


def structure_of(models):
    out = np.empty(len(models), dtype=np.int64)
    for name, part, _ in models.iter_structures():
        out[part] = STRUCTURES.index(name)
    return out


@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
def test_clusters_are_connected_and_never_span_two_structures(geometry, linkage):
    meshes, models = geometry
    img = write_dense_in_memory(models, n_rows=6)
    layout = grayordinate_layout(img, meshes)
    X = next(layout.read(img, "data"))
    rena = ReNA(layout, n_clusters=300, linkage=linkage).fit(X)
    assert rena.n_clusters_ == 300
    structure = structure_of(models)
    graph = layout.graph
    adjacency = sparse.coo_matrix((np.ones(graph.u.shape[0]), (graph.u, graph.v)),
                                  shape=(graph.n_nodes,) * 2).tocsr()
    for c in range(rena.n_clusters_):
        members = np.flatnonzero(rena.labels_ == c)
        assert np.unique(structure[members]).shape[0] == 1
        n_parts, _ = csgraph.connected_components(adjacency[members][:, members],
                                                  directed=False)
        assert n_parts == 1


def test_label_parcel_and_dense_files_round_trip(geometry, tmp_path):
    meshes, models = geometry
    path = write_dense(tmp_path / "run.dtseries.nii", np.random.default_rng(1).standard_normal(
        (5, len(models))), models)
    layout = grayordinate_layout(path, meshes)
    X = next(layout.read(path, "data"))
    rena = ReNA(layout, n_clusters=40).fit(X)
    values = np.arange(1, 41)
    dlabel = layout.to_dlabel(rena.labels_ + 1, values)
    dlabel.to_filename(str(tmp_path / "parc.dlabel.nii"))
    loaded = nib.load(str(tmp_path / "parc.dlabel.nii"))
    labels_axis, models_axis = (loaded.header.get_axis(i) for i in range(2))
    assert isinstance(labels_axis, cifti2.LabelAxis) and len(labels_axis) == 1
    assert models_axis == models
    table = labels_axis.label[0]
    assert sorted(table) == list(range(41)) and table[0][0] == "???"
    colors = cluster_colors(40)
    for value in (1, 17, 40):
        name, rgba = table[value]
        assert name == f"label_{value}"
        np.testing.assert_allclose(rgba, (*colors[value - 1], 1.0), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(loaded.dataobj)[0], rena.labels_ + 1)

    X_red = rena.transform(X)
    parcels = layout.to_parcels(X_red, rena.labels_, [f"label_{v}" for v in values],
                                nib.load(str(path)).header.get_axis(0))
    parcels.to_filename(str(tmp_path / "run.ptseries.nii"))
    loaded = nib.load(str(tmp_path / "run.ptseries.nii"))
    series, parcel_axis = (loaded.header.get_axis(i) for i in range(2))
    assert isinstance(series, cifti2.SeriesAxis) and series.step == pytest.approx(0.72)
    assert isinstance(parcel_axis, cifti2.ParcelsAxis) and len(parcel_axis) == 40
    assert list(parcel_axis.name[:3]) == ["label_1", "label_2", "label_3"]
    sizes = np.bincount(rena.labels_)
    for c in (0, 39):
        _, voxels, vertices = parcel_axis[c]
        assert len(voxels) + sum(len(v) for v in vertices.values()) == sizes[c]
    np.testing.assert_allclose(np.asarray(loaded.dataobj), X_red, rtol=1e-6)

    back = layout.to_dense(rena.inverse_transform(X_red), series)
    back.to_filename(str(tmp_path / "back.dtseries.nii"))
    loaded = nib.load(str(tmp_path / "back.dtseries.nii"))
    assert loaded.header.get_axis(1) == models
    np.testing.assert_allclose(np.asarray(loaded.dataobj), rena.inverse_transform(X_red),
                               rtol=1e-6)


def test_bad_inputs_get_one_clear_line(geometry, tmp_path):
    meshes, models = geometry
    path = write_dense(tmp_path / "a.dtseries.nii", np.zeros((2, len(models))), models)
    with pytest.raises(InputError, match=r"CIFTI file '.*a.dtseries.nii' has surface "
                       r"structures \(CIFTI_STRUCTURE_CORTEX_LEFT, CIFTI_STRUCTURE_CORTEX_"
                       r"RIGHT\) but a CIFTI file carries no surface geometry: give one "
                       r"GIfTI mesh per structure"):
        grayordinate_layout(path)
    with pytest.raises(InputError, match=r"1 mesh\(es\) for the 2 surface structure"):
        grayordinate_layout(path, meshes[:1])
    small = (meshes[0][0][:642], meshes[0][1][np.all(meshes[0][1] < 642, axis=1)])
    with pytest.raises(InputError, match=r"mesh 1 has 642 vertices but CIFTI file '.*' has "
                       r"CIFTI_STRUCTURE_CORTEX_LEFT on a mesh of 10242"):
        grayordinate_layout(path, [small, meshes[1]])
    layout = grayordinate_layout(path, meshes)
    # A file cut after its header: its rows cannot be read.
    cut = write_dense(tmp_path / "cut.dtseries.nii", np.ones((40, len(models))), models)
    cut.write_bytes(cut.read_bytes()[:-len(models) * 4 * 20])
    with pytest.raises(InputError, match=r"'.*cut.dtseries.nii'.*: its data cannot be read "
                       r"\("):
        list(layout.read(str(cut), "data"))
    other = write_dense(tmp_path / "b.dtseries.nii", np.zeros((2, len(models) - 1200)),
                        models[1200:])
    with pytest.raises(InputError, match=r"'.*b.dtseries.nii' has other grayordinates than "
                       r"CIFTI file '.*a.dtseries.nii'"):
        layout.n_scans(other, "data")
    parcels = cifti2.ParcelsAxis.from_brain_models([("one", models[:10]), ("two", models[10:20])])
    pt = tmp_path / "c.ptseries.nii"
    cifti2.Cifti2Image(np.zeros((2, 2), np.float32),
                       header=(cifti2.SeriesAxis(0, 1, 2), parcels)).to_filename(str(pt))
    with pytest.raises(InputError, match=r"'.*c.ptseries.nii' is a parcellated CIFTI-2 file"):
        grayordinate_layout(pt, meshes)
    small_models = models[-30:]
    dconn = tmp_path / "d.dconn.nii"
    cifti2.Cifti2Image(np.zeros((30, 30), np.float32),
                       header=(small_models, small_models)).to_filename(str(dconn))
    with pytest.raises(InputError, match=r"'.*d.dconn.nii' is not a dense series or scalar "
                       r"CIFTI-2 file \(its axes are BrainModelAxis x BrainModelAxis"):
        grayordinate_layout(dconn)
    nifti = tmp_path / "e.nii.gz"
    nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)).to_filename(str(nifti))
    with pytest.raises(InputError, match=r"'.*e.nii.gz' is not a CIFTI-2 file"):
        grayordinate_layout(nifti)


def test_meshes_that_name_their_hemisphere_are_matched_by_it(geometry, tmp_path):
    meshes, models = geometry
    files = []
    for (coordinates, faces), side in zip(meshes, ("CortexLeft", "CortexRight")):
        gifti = nib.gifti.GiftiImage(meta=nib.gifti.GiftiMetaData(
            {"AnatomicalStructurePrimary": side}))
        gifti.add_gifti_data_array(nib.gifti.GiftiDataArray(
            coordinates.astype(np.float32), intent="NIFTI_INTENT_POINTSET"))
        gifti.add_gifti_data_array(nib.gifti.GiftiDataArray(
            faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE"))
        files.append(tmp_path / f"{side}.surf.gii")
        gifti.to_filename(str(files[-1]))
    img = write_dense_in_memory(models)
    swapped = grayordinate_layout(img, files[::-1])
    np.testing.assert_array_equal(swapped.meshes["CIFTI_STRUCTURE_CORTEX_LEFT"][1], meshes[0][1])
    graph = swapped.graph
    assert set(zip(graph.u.tolist(), graph.v.tolist())) == independent_edges(meshes, models)


def write_meshes(meshes, folder):
    paths = []
    for (coordinates, faces), side in zip(meshes, ("lh", "rh")):
        gifti = nib.gifti.GiftiImage()
        gifti.add_gifti_data_array(nib.gifti.GiftiDataArray(
            coordinates.astype(np.float32), intent="NIFTI_INTENT_POINTSET"))
        gifti.add_gifti_data_array(nib.gifti.GiftiDataArray(
            faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE"))
        paths.append(str(folder / f"{side}.surf.gii"))
        gifti.to_filename(paths[-1])
    return paths


def test_command_line_parcellate_reduce_expand(geometry, tmp_path, capsys):
    from fastrena.cli import main

    meshes, models = geometry
    rng = np.random.default_rng(2)
    runs = [str(write_dense(tmp_path / f"run{i}.dtseries.nii",
                            rng.standard_normal((4, len(models))), models))
            for i in (1, 2, 3)]
    lh, rh = write_meshes(meshes, tmp_path)
    labels = str(tmp_path / "parc.dlabel.nii")
    picture = tmp_path / "parc.png"
    assert main(["parcellate", runs[0], runs[1], "--mesh", lh, "--mesh", rh, "-k", "200",
                 "-o", labels, "--plot", str(picture), "-q"]) == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dlabel = nib.load(labels)
    assert dlabel.header.get_axis(1) == models
    values = np.asarray(dlabel.dataobj)[0]
    assert sorted(np.unique(values)) == list(range(1, 201))
    table = [line.split("\t") for line in (tmp_path / "parc.tsv").read_text().splitlines()]
    assert table[0] == ["index", "name", "color", "size"] and len(table) == 201
    assert [int(row[3]) for row in table[1:]] == np.bincount(values)[1:].tolist()
    # The same labels as a fit in Python on the same rows, and with --dask
    # (the files read lazily, two rows per chunk).
    layout = grayordinate_layout(runs[0], meshes)
    X = np.concatenate([next(layout.read(r, "run")) for r in runs[:2]])
    np.testing.assert_array_equal(values, ReNA(layout, n_clusters=200).fit(X).labels_ + 1)
    lazy = str(tmp_path / "lazy.dlabel.nii")
    assert main(["parcellate", runs[0], runs[1], "--mesh", lh, "--mesh", rh, "-k", "200",
                 "-o", lazy, "--dask", "--volumes-per-chunk", "2", "-q"]) == 0
    np.testing.assert_array_equal(np.asarray(nib.load(lazy).dataobj)[0], values)

    parcels = str(tmp_path / "run3.ptseries.nii")
    assert main(["reduce", runs[2], "--labels", labels, "-o", parcels, "-q"]) == 0
    lazy_means = tmp_path / "lazy.npy"
    assert main(["reduce", runs[2], "--labels", labels, "-o", str(lazy_means), "--dask",
                 "-q"]) == 0
    np.testing.assert_array_equal(np.load(lazy_means), np.asarray(nib.load(parcels).dataobj))
    reduced = nib.load(parcels)
    assert isinstance(reduced.header.get_axis(1), cifti2.ParcelsAxis)
    assert reduced.header.get_axis(0) == nib.load(runs[2]).header.get_axis(0)
    X3 = next(layout.read(runs[2], "run"))
    means = np.stack([X3[:, values == v].mean(axis=1) for v in range(1, 201)], axis=1)
    np.testing.assert_allclose(np.asarray(reduced.dataobj), means, rtol=1e-5, atol=1e-6)

    back = str(tmp_path / "back.dtseries.nii")
    assert main(["expand", parcels, "--labels", labels, "-o", back, "-q"]) == 0
    expanded = nib.load(back)
    assert expanded.header.get_axis(1) == models
    np.testing.assert_array_equal(np.asarray(expanded.dataobj),
                                  np.asarray(reduced.dataobj)[:, values - 1])
    one = str(tmp_path / "one.dscalar.nii")
    np.save(tmp_path / "row.npy", means[0])
    assert main(["expand", str(tmp_path / "row.npy"), "--labels", labels, "-o", one, "-q"]) == 0
    assert isinstance(nib.load(one).header.get_axis(0), cifti2.ScalarAxis)

    # Several scales from one fit, nested, named with {k}.
    assert main(["parcellate", runs[0], runs[1], "--mesh", lh, "--mesh", rh, "-k", "20",
                 "-k", "200", "-o", str(tmp_path / "scale_{k}.dlabel.nii"), "-q"]) == 0
    fine = np.asarray(nib.load(str(tmp_path / "scale_200.dlabel.nii")).dataobj)[0]
    coarse = np.asarray(nib.load(str(tmp_path / "scale_20.dlabel.nii")).dataobj)[0]
    np.testing.assert_array_equal(fine, values)
    pairs = np.unique(np.column_stack([fine, coarse]), axis=0)
    assert np.unique(coarse).shape[0] == 20 and pairs.shape[0] == 200
    assert (tmp_path / "scale_20.tsv").exists()

    capsys.readouterr()
    assert main(["parcellate", runs[0], "-k", "10", "-o", str(tmp_path / "x.dlabel.nii")]) == 1
    assert "carries no surface geometry" in capsys.readouterr().err
    assert main(["parcellate", runs[0], "--mesh", lh, "--mesh", rh, "-k", "10",
                 "-o", str(tmp_path / "x.nii.gz")]) == 1
    assert "output '" in capsys.readouterr().err
    assert main(["reduce", runs[2], "--labels", labels, "-o", parcels, "-q"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["parcellate", runs[0], "--mesh", lh, "--mesh", rh, "-k", "10", "-o",
                 str(tmp_path / "y.dlabel.nii"), "--reduced", str(tmp_path / "y.tsv")]) == 1
    assert (f"'{tmp_path / 'y.tsv'}' is the name of the lookup table written beside "
            f"'{tmp_path / 'y.dlabel.nii'}'") in capsys.readouterr().err
    assert not (tmp_path / "y.dlabel.nii").exists()


def test_command_line_picture_over_bg_img(geometry, tmp_path, capsys, monkeypatch):
    """--bg-img is the anatomy under the volume structures' slices (the
    MNI152 template without it); the picture is written without leaving a
    figure in pyplot."""
    pytest.importorskip("matplotlib")
    from matplotlib import pyplot

    from fastrena import plotting
    from fastrena.cli import main

    meshes, models = geometry
    run = str(write_dense(tmp_path / "run.dtseries.nii",
                          np.random.default_rng(4).standard_normal((3, len(models))), models))
    lh, rh = write_meshes(meshes, tmp_path)
    anatomy = np.arange(8 * 9 * 10, dtype=np.float32).reshape(8, 9, 10)
    nib.Nifti1Image(anatomy, np.diag([20.0, 20.0, 20.0, 1.0])).to_filename(
        str(tmp_path / "t1.nii.gz"))
    command = ["parcellate", run, "--mesh", lh, "--mesh", rh, "-k", "50", "-o",
               str(tmp_path / "p.dlabel.nii"), "--bg-img", str(tmp_path / "t1.nii.gz")]
    assert main([*command, "-q"]) == 1
    assert capsys.readouterr().err == ("fastrena parcellate: error: --bg-img is only used "
                                       "with --plot\n")
    drawn = []
    draw = plotting.plot_grayordinate_parcellation
    monkeypatch.setattr(plotting, "plot_grayordinate_parcellation",
                        lambda *args, **kwargs: drawn.append(kwargs) or draw(*args, **kwargs))
    pyplot.close("all")
    assert main([*command, "--plot", str(tmp_path / "p.png"), "-q"]) == 0
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    np.testing.assert_array_equal(np.asarray(drawn[0]["bg_img"].dataobj), anatomy)
    assert drawn[0]["volume_structures"] == list(STRUCTURES[2:])
    assert pyplot.get_fignums() == []


def test_the_picture_shows_both_surfaces_and_the_volume_structures(geometry):
    """Four surface views and three slices; a cluster has one colour
    wherever it is drawn (the rank of its value among all the values)."""
    pytest.importorskip("matplotlib")
    from fastrena import plotting

    meshes, models = geometry
    img = write_dense_in_memory(models, n_rows=4)
    layout = grayordinate_layout(img, meshes)
    rena = ReNA(layout, n_clusters=120).fit(next(layout.read(img, "data")))
    values = rena.labels_ + 1
    surface_meshes, parts, sides = layout.surface_parts(values)
    assert sides == ["left", "right"]
    volume = layout.volume_img(values)
    assert [p.shape[0] for p in parts] == [10242, 10242]
    left_vertices = models[models.name == STRUCTURES[0]].vertex
    np.testing.assert_array_equal(parts[0][left_vertices], values[models.name == STRUCTURES[0]])
    assert np.count_nonzero(parts[0]) == left_vertices.shape[0]
    grid = np.asarray(volume.dataobj)
    in_volume = models.volume_mask
    np.testing.assert_array_equal(grid[tuple(models.voxel[in_volume].T)], values[in_volume])
    assert np.count_nonzero(grid) == in_volume.sum()
    figure = plotting.plot_grayordinate_parcellation(
        surface_meshes, parts, volume, sides=sides,
        volume_structures=layout.volume_structures())
    # 4 surface views, 6 axial slices through the thalami (z 0 to 12 mm).
    assert len(figure.axes) == 10
    assert figure.texts[0].get_text() == "120 clusters"
    assert [ax.get_title() for ax in figure.axes[:4]] == [
        "left lateral", "left medial", "right lateral", "right medial"]
    assert figure.texts[1].get_text() == ("volume structures, axial slices over the MNI152 "
                                          "template (z in mm): left and right thalamus")
    # Each slice: the MNI152 template, and over it the clusters, each voxel
    # in its cluster's colour at its own coordinates (the affine's mm).
    xyz = nib.affines.apply_affine(models.affine, models.voxel[in_volume])
    ranks = np.searchsorted(np.unique(values), values[in_volume])
    colors = cluster_colors(120)
    slices = figure.axes[4:]
    cuts = [float(ax.get_title().removeprefix("z = ")) for ax in slices]
    assert cuts == sorted(set(cuts)) and set(cuts) <= set(xyz[:, 2])
    for ax, z in zip(slices, cuts):
        anatomy, clusters = ax.images
        assert np.ptp(anatomy.get_array()) > 0
        rgba = np.asarray(clusters.get_array())
        left, right, bottom, top = clusters.get_extent()
        size = ((right - left) / rgba.shape[1], (top - bottom) / rgba.shape[0])
        here = xyz[:, 2] == z
        column = ((xyz[here, 0] - left) / size[0]).astype(int)
        row = ((xyz[here, 1] - bottom) / size[1]).astype(int)
        np.testing.assert_array_equal(rgba[row, column, :3], colors[ranks[here]])
        assert (rgba[row, column, 3] == 1).all()
        # Nothing else is coloured: each coloured template voxel (1 mm) lies
        # within a cluster voxel (2 mm) of this slice.
        rows, columns = np.nonzero(rgba[..., 3])
        centres = np.column_stack([left + (columns + 0.5) * size[0],
                                   bottom + (rows + 0.5) * size[1]])
        distance = np.abs(centres[:, None, :] - xyz[None, here, :2]).max(axis=2).min(axis=1)
        assert distance.max() <= 1.0
        assert [t.get_text() for t in ax.texts] == ["L", "R"]
    # Mirrored meshes (left at x > 0) keep their structures' names.
    mirrored = [(coords * [-1, 1, 1], faces) for coords, faces in surface_meshes]
    figure = plotting.plot_grayordinate_parcellation(mirrored, parts, volume, sides=sides,
                                                     bg_img=None)
    assert figure.axes[0].get_title() == "left lateral"
    assert figure.texts[1].get_text() == "volume structures, axial slices (z in mm)"
    assert all(len(ax.images) == 1 for ax in figure.axes[4:])
    from matplotlib import pyplot

    pyplot.close("all")


def test_the_picture_names_the_volume_structures(geometry):
    """Structures on both sides are grouped, the others named alone."""
    pytest.importorskip("matplotlib")
    from fastrena import plotting

    _, models = geometry
    grid = np.zeros(models.volume_shape, np.int32)
    grid[tuple(models.voxel[models.volume_mask].T)] = 1
    img = nib.Nifti1Image(grid, models.affine)
    figure = plotting.plot_grayordinate_parcellation(
        [], [], img, bg_img=None, output_file=None,
        volume_structures=["CIFTI_STRUCTURE_PUTAMEN_LEFT", "CIFTI_STRUCTURE_BRAIN_STEM",
                           "CIFTI_STRUCTURE_PUTAMEN_RIGHT", "CIFTI_STRUCTURE_CAUDATE_RIGHT"])
    assert figure.texts[1].get_text() == ("volume structures, axial slices (z in mm): left and "
                                          "right putamen; caudate (right); brain stem")
    from matplotlib import pyplot

    pyplot.close("all")


def test_rena_takes_a_cifti_file_or_its_layout(geometry, tmp_path):
    """``mask_img`` may be a dense CIFTI-2 file when it has no surface (its
    voxels need no mesh); with surfaces, the error says to give the layout."""
    meshes, models = geometry
    volume_models = models[models.volume_mask]
    path = write_dense(tmp_path / "sub.dtseries.nii",
                       np.random.default_rng(3).standard_normal((5, len(volume_models))),
                       volume_models)
    X = np.asarray(nib.load(str(path)).dataobj)
    from_file = ReNA(str(path), n_clusters=30).fit(X)
    from_layout = ReNA(grayordinate_layout(path), n_clusters=30).fit(X)
    np.testing.assert_array_equal(from_file.labels_, from_layout.labels_)
    assert from_file.mask_img_ == volume_models
    both = write_dense(tmp_path / "both.dtseries.nii", np.zeros((2, len(models))), models)
    with pytest.raises(InputError, match=r"carries no surface geometry.*; for ReNA, give "
                       r"mask_img=fastrena.io.grayordinate_layout\(path, meshes\)"):
        ReNA(str(both), n_clusters=3).fit(np.zeros((2, len(models))))


def test_review_fixes_files_kinds_names_and_checks(geometry, tmp_path, capsys):
    """Intent codes and row axes by file kind, float64 kept, parcels named
    by the label table and checked by content, meshes matched by name even
    when only one is named, and one-line errors for the mismatches."""
    from fastrena.cli import main
    from fastrena.io import labels_to_gifti, labels_to_parcels_img

    meshes, models = geometry
    rng = np.random.default_rng(7)
    run = str(write_dense(tmp_path / "run.dtseries.nii",
                          rng.standard_normal((4, len(models))), models))
    maps = str(write_dense(tmp_path / "maps.dscalar.nii",
                           rng.standard_normal((3, len(models))), models, series=False))
    lh, rh = write_meshes(meshes, tmp_path)
    labels = str(tmp_path / "parc.dlabel.nii")
    assert main(["parcellate", run, "--mesh", lh, "--mesh", rh, "-k", "30", "-o", labels,
                 "-q"]) == 0
    assert nib.load(labels).nifti_header.get_intent()[0] == "ConnDenseLabel"
    def kind(path, intent, rows, dtype=np.float32):
        img = nib.load(path)
        assert img.nifti_header.get_intent()[0] == intent
        assert isinstance(img.header.get_axis(0), rows)
        assert np.asarray(img.dataobj).dtype == dtype

    pscalar = str(tmp_path / "maps.pscalar.nii")
    assert main(["reduce", maps, "--labels", labels, "-o", pscalar, "--dtype", "float64",
                 "-q"]) == 0
    kind(pscalar, "ConnParcelScalr", cifti2.ScalarAxis, np.float64)
    ptseries = str(tmp_path / "maps.ptseries.nii")
    assert main(["reduce", maps, "--labels", labels, "-o", ptseries, "-q"]) == 0
    kind(ptseries, "ConnParcelSries", cifti2.SeriesAxis)
    dense = str(tmp_path / "back.dtseries.nii")
    assert main(["expand", pscalar, "--labels", labels, "-o", dense, "--dtype", "float64",
                 "-q"]) == 0
    kind(dense, "ConnDenseSeries", cifti2.SeriesAxis, np.float64)

    # A label table's names name the parcels (as Workbench does); expand
    # checks the parcels' grayordinates, not their names.
    table_img = nib.load(labels)
    table = dict(table_img.header.get_axis(0).label[0])
    renamed = {key: (f"area {key}" if key else name, rgba)
               for key, (name, rgba) in table.items()}
    named = str(tmp_path / "named.dlabel.nii")
    cifti2.Cifti2Image(np.asarray(table_img.dataobj),
                       header=(cifti2.LabelAxis(["ReNA"], [renamed]), models)).to_filename(named)
    named_parcels = str(tmp_path / "named.ptseries.nii")
    assert main(["reduce", run, "--labels", named, "-o", named_parcels, "-q"]) == 0
    assert list(nib.load(named_parcels).header.get_axis(1).name[:2]) == ["area 1", "area 2"]
    assert main(["expand", named_parcels, "--labels", labels, "-o",
                 str(tmp_path / "ok.dtseries.nii"), "-q"]) == 0
    values = np.asarray(table_img.dataobj)[0]
    shuffled = values.copy()
    first, second = np.flatnonzero(values == 1)[0], np.flatnonzero(values == 2)[0]
    shuffled[[first, second]] = shuffled[[second, first]]
    other = str(tmp_path / "other.dlabel.nii")
    cifti2.Cifti2Image(shuffled[None, :].astype(np.int32),
                       header=(table_img.header.get_axis(0), models)).to_filename(other)
    capsys.readouterr()
    assert main(["expand", named_parcels, "--labels", other, "-o",
                 str(tmp_path / "bad.dtseries.nii")]) == 1
    assert "30 parcels that are not the labels' 30 clusters" in capsys.readouterr().err
    assert not (tmp_path / "bad.dtseries.nii").exists()

    # CIFTI images with NIfTI labels, and a CIFTI image saved as NIfTI.
    nifti_labels = tmp_path / "labels.nii.gz"
    nib.Nifti1Image(np.ones((2, 2, 2), np.int16), np.eye(4)).to_filename(str(nifti_labels))
    assert main(["reduce", run, "--labels", str(nifti_labels), "-o",
                 str(tmp_path / "r.npy")]) == 1
    assert ("is a CIFTI-2 file: reduce it with CIFTI-2 labels (--labels parc.dlabel.nii)"
            in capsys.readouterr().err)
    from fastrena.io import save_img

    with pytest.raises(InputError, match=r"output '.*x.nii.gz' must end with .dtseries.nii"):
        save_img(nib.load(run), tmp_path / "x.nii.gz")

    # The Python helpers check what they are given.
    layout = grayordinate_layout(run, meshes)
    rena = ReNA(layout, n_clusters=30).fit(next(layout.read(run, "run")))
    with pytest.raises(InputError, match=r"X_red has shape \(2, 7\) but the parcellation has "
                       r"30 clusters"):
        labels_to_parcels_img(rena, np.zeros((2, 7)))
    with pytest.raises(InputError, match="fitted on CIFTI-2 grayordinates; use labels_to_img"):
        labels_to_gifti(rena)


def test_a_mesh_that_names_its_structure_is_matched_alone(geometry, tmp_path):
    meshes, models = geometry
    (coordinates, faces) = meshes[1]
    gifti = nib.gifti.GiftiImage(meta=nib.gifti.GiftiMetaData(
        {"AnatomicalStructurePrimary": "CortexRight"}))
    gifti.add_gifti_data_array(nib.gifti.GiftiDataArray(
        coordinates.astype(np.float32), intent="NIFTI_INTENT_POINTSET"))
    gifti.add_gifti_data_array(nib.gifti.GiftiDataArray(
        faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE"))
    right = tmp_path / "right.surf.gii"
    gifti.to_filename(str(right))
    layout = grayordinate_layout(write_dense_in_memory(models), [right, meshes[0]])
    np.testing.assert_array_equal(layout.meshes[STRUCTURES[1]][1], faces)
    np.testing.assert_array_equal(layout.meshes[STRUCTURES[0]][1], meshes[0][1])
    with pytest.raises(InputError, match=r"mesh '.*right.surf.gii' and mesh '.*right.surf.gii' are "
                       r"both meshes of CIFTI_STRUCTURE_CORTEX_RIGHT"):
        grayordinate_layout(write_dense_in_memory(models), [right, right])
