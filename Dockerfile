# bert-trt on NVIDIA's TensorRT container: by default TensorRT 10.11, CUDA 12.9, Python 3.12, Ubuntu 24.04.
# BASE_IMAGE picks another one, e.g. a TensorRT 11.x container (builder.py builds strongly typed
# networks and explicit int8 there): docker build --build-arg BASE_IMAGE=nvcr.io/nvidia/tensorrt:TAG .
ARG BASE_IMAGE=nvcr.io/nvidia/tensorrt:25.06-py3
FROM ${BASE_IMAGE}

# The container's Python is Ubuntu's system Python, which pip only installs into when told to
# (PEP 668); the container exists to hold exactly these packages.
ENV PIP_BREAK_SYSTEM_PACKAGES=1

WORKDIR /workspace/bert-trt
# Requirements first, so that editing the code does not reinstall them on every build.
COPY requirements.txt requirements-gpu.txt ./
RUN python3 -m pip install --no-cache-dir -r requirements-gpu.txt
COPY . .
