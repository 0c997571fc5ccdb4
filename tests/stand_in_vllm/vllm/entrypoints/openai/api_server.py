"""``python -m vllm.entrypoints.openai.api_server`` answered by the scripted server."""

import sys

from scripted_server import stand_in_main

if __name__ == "__main__":
    stand_in_main(sys.argv[1:])
