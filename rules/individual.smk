# Stage: individual (see the issues that introduce it).
