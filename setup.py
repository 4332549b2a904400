"""Maps the fixed layout (shared/greentic, services/*) onto importable packages."""

from setuptools import find_namespace_packages, setup

SERVICES = {"ingress": "ingress", "router": "router", "executor": "executor",
            "egress": "egress", "pack_loader": "pack-loader"}

setup(
    package_dir={
        "greentic": "shared/greentic",
        "greentic_services": "services",
        **{f"greentic_services.{name}": f"services/{folder}" for name, folder in SERVICES.items()},
    },
    packages=["greentic", *(f"greentic.{p}" for p in find_namespace_packages("shared/greentic")),
              "greentic_services", *(f"greentic_services.{n}" for n in SERVICES)],
    package_data={"greentic": ["providers/webchat/static/*", "interfaces/wit/*/*.wit",
                              "component/templates/*/*"]},
)
