"""The restoration steps and the pipeline that runs them on one scan: plan, tone, clean-up, denoise, deblur, upscale, finish, the fidelity guard."""
