# bert-trt on NVIDIA's TensorRT container: TensorRT 10.11, CUDA 12.9, Python 3.12, Ubuntu 24.04.
FROM nvcr.io/nvidia/tensorrt:25.06-py3

# The container's Python is Ubuntu's system Python, which pip only installs into when told to
# (PEP 668); the container exists to hold exactly these packages.
ENV PIP_BREAK_SYSTEM_PACKAGES=1

WORKDIR /workspace/bert-trt
# Requirements first, so that editing the code does not reinstall them on every build.
COPY requirements.txt requirements-gpu.txt ./
RUN python3 -m pip install --no-cache-dir -r requirements-gpu.txt
COPY . .
