"""``fastrena demo``: ReNA on bundled data, labels and pictures written."""

from pathlib import Path

from .common import add_common, positive_int, progress_on

def add_parser(commands):
    """Add the ``demo`` subcommand to ``commands`` (argparse subparsers)."""
    p = commands.add_parser(
        "demo", help="run ReNA on bundled data and write labels and pictures",
        description="ReNA on nilearn's bundled MNI152 2 mm brain mask with synthetic smooth "
                    "signals, and on the real fsaverage5 surface maps (sulcal depth, "
                    "curvature, thickness); prints what it does and how long it takes, and "
                    "writes the label images and pictures to a folder. Needs the 'neuro' "
                    "extra (pip install fastrena[neuro]).")
    p.add_argument("--out", default="fastrena_demo", metavar="DIR",
                   help="folder to write to, created if needed (default: fastrena_demo)")
    p.add_argument("--samples", type=positive_int, default=100, metavar="S",
                   help="number of synthetic scans (default: 100)")
    p.add_argument("-k", "--n-clusters", type=positive_int, default=5000, metavar="K",
                   help="clusters of the volume parcellation (default: 5000)")
    p.add_argument("--surface-clusters", type=positive_int, default=1000, metavar="K",
                   help="clusters of the surface parcellation (default: 1000)")
    add_common(p)
    p.set_defaults(run=run)


def run(args, session):
    from .._demo import prepare, run_demo

    # The folders prepare() makes go too if the demo fails or is interrupted.
    missing = Path(args.out)
    while not missing.exists() and missing != missing.parent:
        session.new_folders.append(missing)
        missing = missing.parent
    session.check_outputs(prepare(Path(args.out)), {}, args.force)
    run_demo(Path(args.out), samples=args.samples, n_clusters=args.n_clusters,
             surface_clusters=args.surface_clusters, force=args.force,
             progress=progress_on(args), say=session.say, report=session.hold)
