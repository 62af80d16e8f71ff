"""Maps (Folium): coverage, hot-spot and plan maps; served by the API and exported."""
