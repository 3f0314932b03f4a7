"""read_yaml: yaml.safe_load's result, parsed once per version of the file, and a copy the caller may change."""

import os

import yaml

from orchestration.lib.settings import DBT_PROJECT_DIR
from orchestration.lib.yaml_files import read_yaml


def test_the_projects_yaml_reads_as_safe_load_reads_it():
    for path in [DBT_PROJECT_DIR / "dbt_project.yml", *sorted((DBT_PROJECT_DIR / "models").rglob("*.yml"))]:
        assert read_yaml(path) == yaml.safe_load(path.read_text()), path


def test_an_edited_file_is_read_again_and_a_change_to_the_result_stays_with_the_caller(tmp_path):
    path = tmp_path / "vars.yml"
    path.write_text("vars:\n  window_days: 7\n")
    first = read_yaml(path)
    first["vars"]["window_days"] = 99
    assert read_yaml(path) == {"vars": {"window_days": 7}}
    stat = path.stat()
    path.write_text("vars:\n  window_days: 14\n")  # same size: the mtime tells the versions apart
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert read_yaml(path) == {"vars": {"window_days": 14}}
