"""CAM methods (one registry, cam.methods): closed forms for the pooled linear head (cam.headcam), tf-keras-vis
for Keras models (cam.keras_vis), heatmaps mapped back onto the scan (cam.heatmap) and overlays (cam.overlay)."""
