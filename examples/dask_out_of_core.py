"""
Out of core and on a cluster with Dask (shown, not run)
=======================================================

This script is shown, not run when the site is built: it reads files and
joins a scheduler that the build does not have. ``ReNA.fit`` takes a
``dask.array`` chunked along samples and reads it twice, chunk by chunk;
the labels are those of the in-memory fit of the same values, bit for
bit, whatever the chunking or the number of workers.
"""

from glob import glob

from fastrena import ReNA
from fastrena.dask import from_images, use_scheduler

if __name__ == "__main__":  # Dask's process-based schedulers import this file
    # One chunk per file, opened in the task that reads it: headers only here.
    X = from_images(sorted(glob("sub-*/func/*_bold.nii.gz")), "brain_mask.nii.gz")
    # A running cluster (for instance dask-jobqueue's SLURMCluster):
    with use_scheduler("tcp://10.0.0.5:8786"):
        rena = ReNA("brain_mask.nii.gz", n_clusters=5000).fit(X)
        X_red = rena.transform(X).compute()  # (n_scans, 5000)
