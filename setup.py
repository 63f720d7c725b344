"""Builds the proxy's compiled head codec: ``python setup.py build_ext --inplace`` (bin/lib/bootstrap.sh runs it)."""

from setuptools import Extension, setup

setup(
    packages=[],
    py_modules=[],
    ext_modules=[Extension(
        "balancer.proxy._codec",
        sources=[f"balancer/proxy/csrc/{name}.c"
                 for name in ("module", "request", "reqtype", "response", "body", "series",
                              "hot", "cores", "state", "config", "pools", "fastpath")],
        depends=["balancer/proxy/csrc/codec.h", "balancer/proxy/csrc/hot.h"],
        extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                            "-Wno-missing-field-initializers", "-Wno-cast-function-type"],
    )],
)
