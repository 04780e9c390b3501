"""import-linter contracts its built-in types cannot say (`make lint` runs them with the rest).

A wildcard of import-linter replaces whole module names only, so "no module of tests imports a
`test_*` module" needs its own contract type, named in `[tool.importlinter]` in pyproject.toml.
"""

from __future__ import annotations

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


def _is_test_or_conftest(module: str) -> bool:
    name = module.rsplit(".", 1)[-1]
    return name == "conftest" or name.startswith("test_")


class TestModulesShareNothingContract(Contract):
    """No module of `package` imports a conftest or a test module (`test_*`) of it: pytest
    finds fixtures in conftests, and shared helpers live in a support package."""

    type_name = "test_modules_share_nothing"

    package = fields.StringField()

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        package = str(self.package)
        modules = graph.find_descendants(package) | {package}
        broken = []
        for importer in sorted(modules):
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if imported in modules and _is_test_or_conftest(imported):
                    lines = sorted(
                        detail["line_number"]
                        for detail in graph.get_import_details(importer=importer, imported=imported)
                    )
                    broken.append((importer, imported, lines))
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, imported, lines in check.metadata["broken"]:
            where = ", ".join(f"l.{n}" for n in lines)
            output.print_error(f"{importer} -> {imported} ({where})", bold=False)
            output.new_line()
        output.print("Move what both need to tests/support/ (fixtures to a conftest).")
