"""SAM-family networks (SAM ViT-B/L/H, MobileSAM TinyViT, MedSAM) and checkpoint loading."""
