"""What is measured on each reduction: error to the clean signal, cluster
sizes, and downstream classification accuracy."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


def cluster_reconstruction(noisy, labels):
    """Each feature gets the mean of its cluster (noisy data)."""
    n = int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=n).astype(np.float64)
    means = np.zeros((noisy.shape[0], n))
    np.add.at(means.T, labels, noisy.T)
    return (means / sizes)[:, labels]


def relative_error(clean, reconstruction):
    return float(np.linalg.norm(clean - reconstruction) / np.linalg.norm(clean))


def size_figures(labels):
    sizes = np.bincount(labels)
    return {"n_clusters": int(sizes.shape[0]),
            "largest_over_mean": float(sizes.max() / sizes.mean()),
            "singletons_pct": float(100.0 * np.mean(sizes == 1))}


class GridPooling(TransformerMixin, BaseEstimator):
    """Average pooling on the blocks of ``peers.grid_labels`` as a
    scikit-learn transformer, for the downstream pipelines."""

    def __init__(self, mask=None, n_clusters=2):
        self.mask = mask
        self.n_clusters = n_clusters

    def fit(self, X, y=None):
        from peers import grid_labels

        self.labels_ = grid_labels(self.mask, self.n_clusters)
        self.sizes_ = np.bincount(self.labels_).astype(np.float64)
        return self

    def transform(self, X):
        out = np.zeros((X.shape[0], self.sizes_.shape[0]))
        np.add.at(out.T, self.labels_, np.asarray(X, dtype=np.float64).T)
        return out / self.sizes_


def cv_accuracy(reducer, X, y, seed=0):
    """Mean 5-fold stratified accuracy of an l2 logistic regression on the
    reducer's output (None: raw features), the reducer fitted inside each
    training fold."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [] if reducer is None else [reducer]
    model = make_pipeline(*steps, StandardScaler(),
                          LogisticRegression(C=1.0, max_iter=5000))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(model, X, y, cv=folds)))
