# Embedding-size methods: one generated rule per entry of config `methods:` (baselines/ or a
# user module). Each writes the masks of all its budgets in one job; retraining is common.

for _method, _spec in config["methods"].items():

    rule:
        name:
            f"make_masks_{_method}"
        input:
            unpack(method_inputs(_method)),
        output:
            **method_outputs(_method),
        log:
            f"results/logs/make_masks/{_method}/{{dataset}}/{{model}}/seed{{seed}}.log",
        conda:
            "../../environment.yml"
        threads: config["threads"]
        resources:
            **config["resources"]["search"],
        params:
            method=_method,
            budgets=_spec["budgets"],
            method_params=_spec["params"],
            module=_spec.get("module"),
            train=train_params,
            model_overrides=lambda wc: model_overrides_block(config, wc.model),
        script:
            "../scripts/make_masks.py"
