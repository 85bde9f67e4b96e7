# %% [markdown]
# # 8. Time-series forecasting against naive baselines
#
# A forecaster reads the last $L$ values (the *lookback*) and predicts the next one:
# $\hat y_{t+1} = V h_t + c$ after an LSTM has read $x_{t-L+1}, \dots, x_t$. It is worth something
# only if it beats the forecasts that need no learning: the **naive** forecast $\hat y_{t+1} = x_t$
# (tomorrow as today) and, for a series with a season of length $s$, the **seasonal naive**
# forecast $\hat y_{t+1} = x_{t+1-s}$. The series here is the classic monthly airline passenger
# totals (1949-1960), read from the data directory (`RNNLAB_DATA`).

# %%
import matplotlib.pyplot as plt
import numpy as np

import rnnlab
from rnnlab.data.datasets import time_series
from rnnlab.data.timeseries import naive_forecast, prepare_forecast, seasonal_naive_forecast

dates, passengers = time_series("airline-passengers")
print(len(passengers), "months,", passengers[:6], "...")

# %% [markdown]
# The split is by time (no future leaks into training): the first 70 % trains, the next 15 %
# validates, the last 15 % tests. The scaler is fitted on the training part only. The trend makes
# levels unseen in training appear in the test part, so the model predicts the *change* from the
# same month a year before, in log units (a multiplicative seasonality becomes additive): it learns
# what the seasonal naive forecast misses, the growth.

# %%
L = 24
series = np.log(passengers.astype(np.float64))
data = prepare_forecast(series, L, train_frac=0.7, val_frac=0.15, scaler="standard")
print("windows:", data.x_train.shape, data.x_val.shape, data.x_test.shape)

model = rnnlab.Sequential([rnnlab.LSTM(16, input_size=1, seed=0), rnnlab.Dense(1, seed=1)])
year_before = data.x_train[:, -12, :]  # the window's value 12 months before the target
history = model.fit(data.x_train, data.y_train - year_before, loss="mse", optimizer=rnnlab.optim.Adam(lr=0.01),
                    epochs=60, batch_size=16, seed=0)
print(f"training MSE {history['loss'][0]:.3f} -> {history['loss'][-1]:.4f}")

# %%
def to_passengers(scaled):
    return np.exp(data.scaler.inverse_transform(scaled.reshape(-1, 1)).ravel())


truth = np.exp(data.y_test_raw.ravel())
forecast = to_passengers(model(data.x_test).ravel() + data.x_test[:, -12, 0])
x_raw = np.exp(data.x_test_raw)
baselines = {"naive": naive_forecast(x_raw).ravel(), "seasonal naive (12)": seasonal_naive_forecast(x_raw, 12).ravel()}


def mae(pred):
    return float(np.mean(np.abs(pred - truth)))


print(f"{'LSTM':22} MAE {mae(forecast):6.1f} thousand passengers")
for name, pred in baselines.items():
    print(f"{name:22} MAE {mae(pred):6.1f}")
assert mae(forecast) < min(mae(pred) for pred in baselines.values())

# %%
fig, ax = plt.subplots(figsize=(9, 3.5))
months = np.arange(len(truth))
ax.plot(months, truth, "k", label="observed")
ax.plot(months, forecast, label=f"LSTM (MAE {mae(forecast):.1f})")
seasonal = baselines["seasonal naive (12)"]
ax.plot(months, seasonal, "--", label=f"seasonal naive (MAE {mae(seasonal):.1f})")
ax.set_xlabel("test month")
ax.set_ylabel("passengers (thousands)")
ax.legend()
plt.show()

# %% [markdown]
# The LSTM's error is a fraction of both baselines' on the three test years: it has learned the
# growth from one year to the next that the seasonal naive forecast leaves out. `rnnlab train examples/sunspots.toml`
# runs the same comparison on the monthly sunspot numbers and reports both baselines with every
# evaluation.
