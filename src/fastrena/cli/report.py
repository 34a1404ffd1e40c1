"""``fastrena report``: a label file (and images to score it on) -> one
self-contained HTML report."""

import argparse
import csv
import re
import time

from ..errors import InputError
from .common import (add_common, count, elapsed, group_scans, non_negative_int,
                     progress_on, refuse_gifti)

#: Names the report may take (a browser opens them by their suffix).
HTML = (".html", ".htm")


def add_parser(commands):
    """Add the ``report`` subcommand to ``commands`` (argparse subparsers)."""
    p = commands.add_parser(
        "report", help="a parcellation's report: one HTML page with pictures and metrics",
        description="Write one self-contained HTML page about a parcellation: pictures of "
                    "the parcels, their sizes (histogram and sortable table with the "
                    "dseg.tsv names and colours), connectedness and, given images, the "
                    "parcels' homogeneity against random parcels of the same sizes, the "
                    "compression error and the split-half reproducibility (two ReNA fits "
                    "with default parameters and K parcels, on each half of the scans). "
                    "It opens offline in any browser.",
        epilog="Examples:\n"
               "  fastrena report --labels labels.nii.gz -o report.html\n"
               "  fastrena report run1.nii.gz run2.nii.gz --labels labels.nii.gz -o report.html\n"
               "  fastrena report --labels lh.label.gii --labels rh.label.gii --mesh lh.pial.gii "
               "--mesh rh.pial.gii -o report.html",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="*", metavar="IMG",
                   help="images to score the parcels on (optional): NIfTI images on the "
                        "labels' grid; GIfTI data files, one per label file for each scan "
                        "group; or CIFTI-2 dense files on the labels' grayordinates")
    p.add_argument("--labels", action="append", required=True, metavar="LABELS",
                   help="label image written by 'fastrena parcellate' (or any atlas: nonzero "
                        "integer values); for surfaces, one GIfTI label file per mesh, "
                        "--labels repeated; names and colours come from the lookup table "
                        "beside it (labels.tsv) when there is one")
    p.add_argument("--mesh", action="append", metavar="MESH",
                   help="GIfTI mesh of each surface (GIfTI labels: one per label file; CIFTI "
                        "labels: one per cortical structure), for the graph, areas and "
                        "pictures")
    p.add_argument("-o", "--output", required=True, metavar="HTML",
                   help="the report to write (.html)")
    p.add_argument("--title", help="the report's title")
    p.add_argument("--no-split-half", action="store_true",
                   help="skip the split-half reproducibility (its two fits)")
    p.add_argument("--random-state", type=non_negative_int, default=None, metavar="N",
                   help="seed of the random null parcels (default: 0)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="precision the images are read in (default: float32)")
    add_common(p)
    p.set_defaults(run=run)


def run(args, session):
    from ..estimator import ReNA
    from ..parcellations import load_parcellation
    from ..reading import read_images
    from ..report import make_report

    if not str(args.output).lower().endswith(HTML):
        raise InputError(f"-o/--output '{args.output}': a report is an HTML page; name it "
                         "with .html")
    session.check_outputs([args.output], {"image": args.images, "labels": args.labels,
                                          "mesh": args.mesh or []}, args.force)
    start = time.perf_counter()
    parcellation = load_parcellation(args.labels)
    layout, images = _layout(args, parcellation)
    X = None
    if images:
        X = read_images(layout, images, args.dtype, progress_on(args))
    names, colors, tables = _lookup(args.labels, parcellation)
    source = ", ".join(args.labels) + (f" (names and colours: {', '.join(tables)})"
                                       if tables else "")
    template = ReNA(layout, n_clusters=parcellation.n_clusters)
    report = make_report(parcellation.labels, layout, X, template=template,
                         values=parcellation.values, names=names, colors=colors,
                         title=args.title, source=source, split_half=not args.no_split_half,
                         random_state=0 if args.random_state is None else args.random_state)
    report.save_as_html(args.output, force=args.force)
    scored = f", scored on {count(X.shape[0], 'scan')}" if X is not None else ""
    session.wrote(f"{args.output} ({count(parcellation.n_clusters, 'parcel')}{scored}; "
                  f"{elapsed(start)})")


def _layout(args, parcellation):
    """The labels' layout with its geometry (meshes for surfaces), and the
    images grouped as it reads them."""
    from ..grayordinates import GrayordinateLayout, grayordinate_layout
    from ..images import load_surface_files
    from ..layouts import SurfaceLayout

    layout = parcellation.layout
    if isinstance(layout, SurfaceLayout):
        if not args.mesh or len(args.mesh) != len(args.labels):
            raise InputError(f"--mesh: GIfTI label files need their meshes, one per label "
                             f"file ({len(args.labels)}), for the graph, the areas and the "
                             f"pictures; got {len(args.mesh or [])}")
        meshes, _, structures = load_surface_files(args.mesh)
        for mesh, mask, label_file, path in zip(meshes, layout.masks, args.labels, args.mesh):
            if mesh[0].shape[0] != mask.shape[0]:
                raise InputError(f"mesh '{path}' has {mesh[0].shape[0]} vertices but label "
                                 f"file '{label_file}' has {mask.shape[0]}; give the mesh "
                                 "the labels were made on")
        named = tuple(a or b for a, b in zip(layout.structures or structures, structures))
        layout = SurfaceLayout(layout.masks, meshes, structures=named)
        return layout, group_scans(args.images, len(args.labels)) if args.images else []
    if isinstance(layout, GrayordinateLayout):
        if not layout.selected.all():
            raise InputError(f"{args.labels[0]}: {int((~layout.selected).sum())} "
                             "grayordinates have no label (0); fastrena report needs every "
                             "grayordinate labelled, as 'fastrena parcellate' writes them")
        return grayordinate_layout(args.labels[0], args.mesh, "labels"), list(args.images)
    if args.mesh:
        raise InputError("--mesh is only used with surface (GIfTI) or CIFTI-2 labels")
    refuse_gifti(args.images, "score surface labels with GIfTI label files (--labels)")
    return layout, list(args.images)


def _lookup(label_files, parcellation):
    """Each parcel's name and colour: from the lookup tables beside the
    label files (``dseg.tsv``: index, name, color) where they have them,
    else the label file's own names (CIFTI) and the pictures' colours.
    Also the tables read."""
    from .._colors import hex_colors
    from ..files import lookup_table_path

    names = dict(zip(parcellation.values.tolist(), parcellation.parcel_names))
    colors = dict(zip(parcellation.values.tolist(), hex_colors(parcellation.n_clusters)))
    read = []
    for label_file in label_files:
        table = lookup_table_path(label_file)
        if not table.is_file():
            continue
        for row in _rows(table):
            value = int(row["index"])
            if value in names:
                names[value] = row.get("name") or names[value]
                # Only a colour as BIDS writes it goes into the page's styles.
                if re.fullmatch(r"#[0-9a-fA-F]{6}", row.get("color") or ""):
                    colors[value] = row["color"]
        read.append(str(table))
    values = parcellation.values.tolist()
    return [names[v] for v in values], [colors[v] for v in values], read


def _rows(path):
    """The rows of a BIDS ``dseg.tsv`` (``index`` required)."""
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    if rows and "index" not in rows[0]:
        raise InputError(f"lookup table '{path}' has no 'index' column (a dseg.tsv has "
                         "index, name and color)")
    for row in rows:
        try:
            int(row["index"])
        except (TypeError, ValueError):
            raise InputError(f"lookup table '{path}': index '{row['index']}' is not an "
                             "integer") from None
    return rows

