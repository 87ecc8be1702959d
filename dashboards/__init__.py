"""The Streamlit dashboard (`trafficlens dashboard`): app.py routes to the pages under views/, which
share common.py. It ships inside the package as trafficlens.dashboards."""
