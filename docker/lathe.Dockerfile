# lathe serve in a container: Debian 12, the project's own set-up (Debian's LibTorch 1.13,
# CPU), then `lathe serve` on 0.0.0.0:8000 (inside a container the loopback default would be
# unreachable from outside). Untested here: this machine has no docker (docs/serving.md).
#   docker build -f docker/lathe.Dockerfile -t lathe .
#   docker run -p 8000:8000 -v $PWD/runs/base:/models/base:ro -v $PWD/runs/adapter:/models/inventory:ro lathe
FROM debian:12
WORKDIR /opt/lathe
COPY . .
# scripts/setup.sh installs the Debian packages (as root, no sudo needed) and builds build/.
RUN rm -rf build && scripts/setup.sh
EXPOSE 8000
ENTRYPOINT ["/opt/lathe/build/cli/lathe", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["--model", "/models/base", "--served-model-name", "base", "--lora-modules", "inventory=/models/inventory"]
