"""Streamlit-only helpers of the pages (pages/): shared page pieces and model loading (app.ui), figures
(app.figures)."""
