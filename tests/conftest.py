import pytest
from hypothesis import HealthCheck, settings

# tests/helpers.py holds asserts shared by several test modules; have pytest
# rewrite them like the test modules' own (detailed failure messages).
pytest.register_assert_rewrite("helpers")

# --------------------------------------------------------------------------
# Hypothesis profiles
# --------------------------------------------------------------------------
# "ci" (loaded by default): deterministic, so that CI never flakes, and a
# few hundred examples in tests/test_properties.py (its main property test
# runs ``max_examples`` examples, the others a share of it, see
# ``test_properties.examples``).
#
# "long": the same tests with fresh random examples and >= 5,000 examples
# for the main property test (1 minute on 2 idle cores, 9 with both busy),
# chosen with hypothesis's own pytest option:
#
#     python -m pytest tests/test_properties.py --hypothesis-profile=long -q -W error::RuntimeWarning
#
# Tests with an explicit ``@settings(...)`` keep the values they give and
# take the others from the loaded profile.
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    parent=settings.get_profile("ci"),
    max_examples=5000,
    derandomize=False,
)
settings.load_profile("ci")
