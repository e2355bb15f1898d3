"""genood: does my generative model know what it doesn't know?

Likelihood models (Glow, CV-Glow, RealNVP, PixelCNN, VAEs) with decomposed bits/dim, real image
data sets, out-of-distribution detectors, and the analyses of Nalisnick et al. (ICLR 2019).
"""

__version__ = "0.1.0"
