"""Chart code imports more than matplotlib: seaborn, squarify, scipy, pandas, matplotlib's
toolkits. Each chart below is written the way ChartMimic's scripts are; it must run in the
sandbox, draw its data, and trace it to the line that drew it."""

import pytest

from chart_session import shared_renderer

CHARTS = {
    "seaborn_heatmap": """\
import numpy as np
import seaborn as sns
import matplotlib.pyplot as plt
data = np.arange(12).reshape(3, 4)
ax = sns.heatmap(data, annot=True, cmap="viridis")
ax.set_title("Heat")
""",
    "squarify_treemap": """\
import matplotlib.pyplot as plt
import squarify
sizes = [40, 25, 20, 15]
squarify.plot(sizes=sizes, label=["A", "B", "C", "D"], color=["#e41a1c", "#377eb8", "#4daf4a", "#984ea3"])
plt.axis("off")
""",
    "scipy_density": """\
import numpy as np
import matplotlib.pyplot as plt
from scipy.stats import gaussian_kde
np.random.seed(0)
x = np.random.normal(size=200)
grid = np.linspace(-3, 3, 100)
plt.plot(grid, gaussian_kde(x)(grid), color="navy")
plt.title("Density")
""",
    "pandas_bars": """\
import pandas as pd
import matplotlib.pyplot as plt
df = pd.DataFrame({"year": ["2021", "2022", "2023"], "sales": [3, 5, 4]})
ax = df.plot.bar(x="year", y="sales", legend=False)
ax.set_ylabel("Sales")
""",
    "axes_grid_colorbar": """\
import numpy as np
import matplotlib.pyplot as plt
from mpl_toolkits.axes_grid1 import make_axes_locatable
fig, ax = plt.subplots()
im = ax.imshow(np.arange(16).reshape(4, 4))
cax = make_axes_locatable(ax).append_axes("right", size="5%", pad=0.05)
fig.colorbar(im, cax=cax)
""",
}


DRAWN_BY = {  # the line each chart's data must be traced to
    "seaborn_heatmap": 'ax = sns.heatmap(data, annot=True, cmap="viridis")',
    "squarify_treemap": CHARTS["squarify_treemap"].splitlines()[3],
    "scipy_density": 'plt.plot(grid, gaussian_kde(x)(grid), color="navy")',
    "pandas_bars": 'ax = df.plot.bar(x="year", y="sales", legend=False)',
    "axes_grid_colorbar": "im = ax.imshow(np.arange(16).reshape(4, 4))",
}


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_chart_code_using_common_libraries_runs_in_the_sandbox(name):
    code = CHARTS[name]
    result = shared_renderer().render(code)
    assert result.ok, result.error
    drawn = {code[e.span[0]:e.span[1]] for e in result.elements
             if e.role == "data" and e.span is not None}
    assert DRAWN_BY[name] in drawn, drawn
