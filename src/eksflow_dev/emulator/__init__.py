"""The local AWS emulator: moto in server mode, plus the few behaviours moto lacks that the reference
pipelines need. Run as ``python -m eksflow_dev.emulator --port N`` (binds 127.0.0.1 unless ``--host`` says
otherwise, e.g. inside the kind cluster's emulator pod).

One module per concern, each patch small and documented in docs/emulator.md:
- ``server``: the moto server entry; requests are served one at a time (moto's backends are not thread-safe),
  behind the control API of ``control`` (job seconds, fault windows, call counts); ``apply_patches`` wires
  the rest; ``sqs``: a long-polling ReceiveMessage lets other requests in while it waits;
- ``ecs``: awsvpc tasks can start (moto 5.2.5's ENI lacks ``private_dns_name``), also of a task definition whose
  containers leave memory to the task (Fargate); a task's containers follow
  the task's status (moto leaves them PENDING, which makes EcsRunTaskOperator fail), and a container exits
  with ``EMULATED_EXIT_CODE`` from its environment overrides (default 0), so tests can make a task fail; a
  task that exits 0 writes a ``_SUCCESS`` object under the ``OUTPUT_URI`` of its environment overrides, as
  the real container writes its output;
- ECS, SageMaker: with job seconds > 0 (``EKSFLOW_EMULATOR_JOB_SECONDS`` or the control API), ECS tasks,
  training, processing and transform jobs and endpoint creates/updates take that long;
- ``eks``: add-ons and access entries (moto has neither; Terraform's eks module manages both) and a few
  attributes moto drops; ``infra``: RDS, EC2 and SQS read-back fixes (together they let ``terraform/envs/dev``
  apply and then plan clean);
- ``iam``: IAM enforcement (when switched on): unsigned AssumeRoleWithWebIdentity/SAML as in AWS (the IRSA
  path), the web-identity exchange held to the role's trust policy (``trust``; the token's signature is not
  verified), resources checked per request, policy Conditions evaluated per request (``conditions``, AWS's
  operator semantics, on the request context ``condition_keys`` computes), IAM action names and TLS-only
  bucket policies as AWS evaluates them;
- ``ecr``: an image's digest is the SHA-256 of its manifest (as in ECR); uploaded blobs keep their bytes and
  ``GetDownloadUrlForLayer`` points at the emulator, which serves them (reading an image's config and labels);
- ``sagemaker``: ``UpdateEndpoint`` (moto lacks it) moves the endpoint to the new config; training jobs
  report the metrics in ``EKSFLOW_EMULATOR_TRAINING_METRICS`` (JSON object) as FinalMetricDataList instead
  of moto's fixed ``train:progress``; a job with the hyperparameter ``eksflow_emulated_failure`` ends Failed
  with that FailureReason, a processing or transform job with it in its ``Environment`` too; ``StopTransformJob``;
- ``seed``: what the reference pipelines expect to find in an account (a client of a running emulator).

Nothing here imports moto at module level: moto is imported when the patches are applied, in the emulator's
own process.
"""
