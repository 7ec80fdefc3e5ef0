"""Worlds: what a prompt and an answer are, the tokenizer and the gold reward (base.py), the toy
worlds with an SFT answer distribution (sft.py, lists.py) and the Hugging Face world (hf/).
Worlds are found by name through registry.py; importing this package imports none of them."""
