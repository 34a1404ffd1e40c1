import pytest

# tests/helpers.py holds asserts shared by several test modules; have pytest
# rewrite them like the test modules' own (detailed failure messages).
pytest.register_assert_rewrite("helpers")
