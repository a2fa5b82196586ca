# marketmeter's server: `docker build -t marketmeter .` (docs/deployment.md, "Containers").
# The wheel is built in a first stage; the image holds it installed, run as a user of
# its own, serving on 8080, healthy when /readyz says so.

FROM python:3.12-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.12-slim
RUN useradd --system --uid 10001 --user-group --create-home \
        --home-dir /var/lib/marketmeter marketmeter
COPY --from=wheel /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER marketmeter
WORKDIR /var/lib/marketmeter
ENV MARKETMETER_HOST=0.0.0.0 \
    MARKETMETER_PORT=8080 \
    MARKETMETER_DATABASE_URL=sqlite:////var/lib/marketmeter/marketmeter.db \
    MARKETMETER_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/marketmeter"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status != 200)"]
ENTRYPOINT ["marketmeter"]
CMD ["serve"]
