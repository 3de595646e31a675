"""The browser way in: ``lighthouse serve`` (a Gradio app over the predictor)."""
