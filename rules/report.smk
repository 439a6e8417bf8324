# Stage: report (see the issues that introduce it).
