"""Parity: HF vs vLLM, merged model vs adapter, adapters that change nothing; the checks and their section."""
