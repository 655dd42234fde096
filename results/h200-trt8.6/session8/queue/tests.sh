# Issue 18 item 1: tests/test_gpu.py whole, in two shards with engine folders of their own. Usage: tests.sh a|b
source .work/dev/q/env.sh
k="engine_matches_numpy_reference"; [ $1 = b ] && k="not $k"
BERT_TRT_ENGINE_DIR=$E/tests-$1 python -m pytest -v -s -rA tests/test_gpu.py -k "$k" --junitxml $R/test-gpu-$1.xml
stamp "done tests $1"
