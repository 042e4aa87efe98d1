"""Samplers with one signature over ``denoise(x_t, t, cond) -> x0_hat``, and the schedules they step on."""
