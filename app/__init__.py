"""The Streamlit front end: `streamlit run app/main.py`."""
