"""The dashboard's pages: one Streamlit script each, which also runs alone (`streamlit run`)."""
