"""The Hugging Face world (docs/hf_world.md): world.py (the World), models.py (loading models
safely, scoring text), prompts.py (prompts from files or datasets, templates)."""
