# Stage: dense (see the issues that introduce it).
