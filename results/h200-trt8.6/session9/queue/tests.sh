# Issue 18 item 1: tests/test_gpu.py whole, one process.
source .work/dev/q/env.sh
BERT_TRT_ENGINE_DIR=$E/tests python -m pytest -v -s -rA tests/test_gpu.py --junitxml $R/test-gpu.xml
stamp "done tests"
